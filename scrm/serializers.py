from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .api import TenantRelatedField
from .models import ApiKey, Staff, Store


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


class StaffSerializer(serializers.ModelSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    store_ids = TenantRelatedField(Store, source="stores", many=True, required=False)

    class Meta:
        model = Staff
        fields = ["id", "username", "password", "name", "role", "store_ids", "mobile", "wecom_userid", "active", "created_at"]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["username"] = instance.user.get_username()
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


class ApiKeySerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "active", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text=_("The secret. Shown once; store it now."))

    class Meta(ApiKeySerializer.Meta):
        fields = ApiKeySerializer.Meta.fields + ["key"]
