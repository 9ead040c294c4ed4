from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from .api import TenantRelatedField
from .models import ApiKey, Staff, Store


@extend_schema_serializer(
    examples=[
        OpenApiExample("A store", value={"code": "SH01", "name": "上海静安店", "city": "上海", "region": "华东"},
                       request_only=True),
        OpenApiExample(
            "A store",
            value={"id": 3, "code": "SH01", "name": "上海静安店", "city": "上海", "region": "华东", "active": True,
                   "created_at": "2025-01-05T09:00:00+08:00"},
            response_only=True,
        ),
    ]
)
class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "code", "name", "city", "region", "active", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_code(self, value):
        qs = Store.objects.filter(code=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError(_("A store with this code already exists."))
        return value


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A guide",
            value={"username": "zhangwei", "password": "a-long-password", "name": "张伟", "role": "guide",
                   "store_ids": [3], "mobile": "13800138000", "email": "zhangwei@example.com", "wecom_userid": "zhangwei"},
            request_only=True,
        ),
        OpenApiExample(
            "A guide",
            value={"id": 12, "username": "zhangwei", "name": "张伟", "role": "guide", "store_ids": [3],
                   "mobile": "13800138000", "email": "zhangwei@example.com", "wecom_userid": "zhangwei", "active": True,
                   "created_at": "2025-01-05T09:10:00+08:00"},
            response_only=True,
        ),
    ]
)
class StaffSerializer(serializers.ModelSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    email = serializers.EmailField(
        required=False, allow_blank=True, help_text="Where this person's alerts (e.g. mass contact losses) are emailed."
    )
    store_ids = TenantRelatedField(Store, source="stores", many=True, required=False)

    class Meta:
        model = Staff
        fields = [
            "id", "username", "password", "name", "role", "store_ids", "mobile", "email", "wecom_userid", "active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["username"] = instance.user.get_username()
        data["email"] = instance.user.email
        return data

    def validate_username(self, value):
        users = get_user_model().objects.filter(username=value)
        if self.instance is not None:
            users = users.exclude(pk=self.instance.user_id)
        if users.exists():
            raise serializers.ValidationError(_("This username is taken."))
        return value

    def validate_password(self, value):
        try:
            validate_password(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None
        return value

    def validate(self, attrs):
        if self.instance is None and not attrs.get("password"):
            raise serializers.ValidationError({"password": [_("This field is required.")]})
        role = attrs.get("role", getattr(self.instance, "role", None))
        stores = attrs.get("stores")
        if stores is None and self.instance is not None:
            stores = list(self.instance.stores.all())
        if role in (Staff.Role.GUIDE, Staff.Role.STORE_MANAGER) and not stores:
            raise serializers.ValidationError({"store_ids": [_("Guides and store managers belong to at least one store.")]})
        return attrs


API_KEY_EXAMPLE = {
    "id": 4, "name": "POS", "prefix": "3f9a1c07", "active": True, "created_at": "2025-01-05T09:20:00+08:00",
    "last_used_at": "2025-11-02T08:00:12+08:00", "revoked_at": None,
}


@extend_schema_serializer(
    examples=[
        OpenApiExample("A key for the POS", value={"name": "POS"}, request_only=True),
        OpenApiExample("A key", value=API_KEY_EXAMPLE, response_only=True),
    ]
)
class ApiKeySerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "active", "created_at", "last_used_at", "revoked_at"]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A new key",
            value={**API_KEY_EXAMPLE, "last_used_at": None, "key": "3f9a1c07.q0G7o1yJ5m8cXxS2f3w0pL4kQe9ZrB1tVnA6uHdKc2E"},
            response_only=True,
        )
    ]
)
class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text=_("The secret. Shown once; store it now."))

    class Meta(ApiKeySerializer.Meta):
        fields = ApiKeySerializer.Meta.fields + ["key"]
