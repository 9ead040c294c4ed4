from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from members.models import Member
from scrm.api import TenantRelatedField, TenantSlugRelatedField
from scrm.models import Staff, Store

from .models import Coupon, CouponTemplate


class CouponTemplateSerializer(serializers.ModelSerializer):
    store_ids = TenantRelatedField(Store, source="stores", many=True, required=False)
    categories = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    issued_count = serializers.IntegerField(read_only=True)
    remaining_stock = serializers.IntegerField(read_only=True, allow_null=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = CouponTemplate
        fields = [
            "id", "name", "type", "description", "amount", "threshold", "discount_rate", "discount_cap", "gift",
            "store_ids", "categories", "validity", "valid_from", "valid_until", "valid_days", "total_stock",
            "issued_count", "remaining_stock", "per_member_limit", "active", "summary", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_summary(self, template) -> str:
        return str(template.summary())

    def validate(self, attrs):
        instance = self.instance or CouponTemplate()
        probe = CouponTemplate(**{f.attname: getattr(instance, f.attname) for f in CouponTemplate._meta.concrete_fields})
        for key, value in attrs.items():
            if key != "stores":
                setattr(probe, key, value)
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class CouponSerializer(serializers.ModelSerializer):
    display_code = serializers.CharField(read_only=True)
    template_id = serializers.IntegerField(read_only=True)
    template_name = serializers.CharField(source="template.name", read_only=True)
    member_id = serializers.IntegerField(read_only=True)
    store_id = serializers.IntegerField(read_only=True, allow_null=True)
    guide_id = serializers.IntegerField(read_only=True, allow_null=True)
    redeemed_store_id = serializers.IntegerField(read_only=True, allow_null=True)
    redeemed_guide_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Coupon
        fields = [
            "id", "code", "display_code", "template_id", "template_name", "member_id", "status", "source", "source_ref",
            "campaign_id", "store_id", "guide_id", "issued_at", "valid_from", "expires_at", "claimed_at", "redeemed_at",
            "order_external_id", "order_amount", "benefit_amount", "redeemed_store_id", "redeemed_guide_id",
            "unredeemed_at", "voided_at", "void_reason", "expired_at",
        ]
        read_only_fields = fields


class IssueSerializer(serializers.Serializer):
    """Issue coupons of one template to members named by id or by external id (up to 1,000)."""

    template_id = TenantRelatedField(CouponTemplate, source="template")
    member_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=1000)
    member_external_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=1000
    )
    source = serializers.ChoiceField(choices=Coupon.Source.choices, default=Coupon.Source.API)
    source_ref = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    campaign_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    key = serializers.CharField(
        max_length=120, required=False, allow_blank=True,
        help_text=_("Names this issue; sending the same key again issues nothing to members who already got a coupon under it."),
    )
    dry_run = serializers.BooleanField(default=False, help_text=_("Only count who would get a coupon."))

    def validate(self, attrs):
        ids = set(attrs.get("member_ids") or [])
        external = attrs.get("member_external_ids") or []
        if not ids and not external:
            raise serializers.ValidationError({"member_ids": [_("Name at least one member.")]})
        if external:
            found = dict(Member.objects.filter(external_id__in=external).values_list("external_id", "pk"))
            missing = [e for e in external if e not in found]
            if missing:
                raise serializers.ValidationError(
                    {"member_external_ids": [_("No member with external id %(ids)s.") % {"ids": ", ".join(missing[:10])}]}
                )
            ids |= set(found.values())
        if attrs.get("member_ids"):
            known = set(Member.objects.filter(pk__in=attrs["member_ids"]).values_list("pk", flat=True))
            missing = sorted(set(attrs["member_ids"]) - known)
            if missing:
                raise serializers.ValidationError(
                    {"member_ids": [_("No member with id %(ids)s.") % {"ids": ", ".join(map(str, missing[:10]))}]}
                )
        attrs["members"] = sorted(ids)
        return attrs


class RedeemSerializer(serializers.Serializer):
    order_external_id = serializers.CharField(max_length=64)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))
    store_code = TenantSlugRelatedField(Store, "code", source="store", required=False, allow_null=True)
    guide = TenantRelatedField(Staff, required=False, allow_null=True)
    categories = serializers.ListField(child=serializers.CharField(max_length=40), required=False)


class UnredeemSerializer(serializers.Serializer):
    order_external_id = serializers.CharField(max_length=64)


class VoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RedemptionSerializer(serializers.Serializer):
    replayed = serializers.BooleanField()
    coupon = CouponSerializer()


class IssueResultSerializer(serializers.Serializer):
    issued = serializers.IntegerField()
    already_issued = serializers.IntegerField()
    over_limit = serializers.IntegerField()
    out_of_stock = serializers.IntegerField()
    unknown_members = serializers.IntegerField()
    dry_run = serializers.BooleanField()
    codes = serializers.ListField(child=serializers.CharField(), required=False)


class ResultRowSerializer(serializers.Serializer):
    key = serializers.IntegerField(allow_null=True)
    label = serializers.CharField()
    issued = serializers.IntegerField()
    claimed = serializers.IntegerField()
    redeemed = serializers.IntegerField()
    expired = serializers.IntegerField()
    voided = serializers.IntegerField()
    redemption_rate = serializers.DecimalField(max_digits=7, decimal_places=4)
    sales = serializers.DecimalField(max_digits=14, decimal_places=2)
    benefit = serializers.DecimalField(max_digits=14, decimal_places=2)
