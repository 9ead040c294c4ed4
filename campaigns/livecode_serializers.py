"""Live codes and their joins over the API. Every id names an object of the caller's brand; an id
of another brand's object is an error on its field."""
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from coupons.models import CouponTemplate
from members.models import normalise_mobile
from scrm.api import TenantRelatedField
from scrm.models import Staff, Store
from tagging.models import Tag

from . import qr
from .models import LiveCode, LiveCodeJoin


class LiveCodeSerializer(serializers.ModelSerializer):
    store = TenantRelatedField(Store, required=False, allow_null=True)
    fixed_guide = TenantRelatedField(Staff, required=False, allow_null=True)
    backup_guide = TenantRelatedField(Staff, required=False, allow_null=True)
    welcome_coupon = TenantRelatedField(CouponTemplate, required=False, allow_null=True)
    pool = TenantRelatedField(
        Staff, many=True, required=False, source="pool_guides",
        help_text=_("The guides behind the code, in round-robin order."),
    )
    tags = TenantRelatedField(Tag, many=True, required=False, help_text=_("Tags given to every member who joins."))
    public_url = serializers.SerializerMethodField()

    class Meta:
        model = LiveCode
        fields = [
            "id", "name", "code", "public_url", "channel_type", "store", "rule", "pool", "fixed_guide",
            "backup_guide", "daily_cap", "work_start", "work_end", "welcome_message", "welcome_coupon", "tags",
            "reassign_existing", "starts_at", "ends_at", "status", "cost", "wecom_config_id", "wecom_qr_url",
            "wecom_synced_at", "wecom_sync_error", "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "code", "wecom_config_id", "wecom_qr_url", "wecom_synced_at", "wecom_sync_error", "created_at",
            "updated_at",
        ]

    def get_public_url(self, code) -> str:
        return qr.public_url(code, self.context.get("request"))


class JoinSerializer(serializers.Serializer):
    mobile = serializers.CharField(required=False, allow_blank=True, max_length=32)
    wecom_external_userid = serializers.CharField(required=False, allow_blank=True, max_length=64)
    name = serializers.CharField(required=False, allow_blank=True, max_length=80, default="")

    def validate_mobile(self, value):
        try:
            return normalise_mobile(value)
        except ValueError:
            raise serializers.ValidationError(_("Enter a valid mobile number.")) from None

    def validate(self, attrs):
        if not attrs.get("mobile") and not attrs.get("wecom_external_userid"):
            raise serializers.ValidationError({"mobile": [_("Give a mobile number or a WeCom external user id.")]})
        return attrs


class JoinReadSerializer(serializers.ModelSerializer):
    member_id = serializers.IntegerField(read_only=True)
    live_code_id = serializers.IntegerField(read_only=True)
    guide_id = serializers.IntegerField(read_only=True, allow_null=True)
    guide_name = serializers.SerializerMethodField()
    store_id = serializers.IntegerField(read_only=True, allow_null=True)
    coupon_code = serializers.SerializerMethodField()

    class Meta:
        model = LiveCodeJoin
        fields = ["id", "live_code_id", "member_id", "guide_id", "guide_name", "store_id", "door", "new_member",
                  "guide_changed", "coupon_code", "joined_at"]
        read_only_fields = fields

    def get_guide_name(self, join) -> str:
        return join.guide.name if join.guide_id else ""

    def get_coupon_code(self, join) -> str:
        return join.coupon.display_code if join.coupon_id else ""
