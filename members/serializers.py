from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from scrm.api import TenantRelatedField, TenantSlugRelatedField
from scrm.models import Staff, Store

from .models import ContactStatus, Event, EventType, Gender, Member, Order, OrderLine, normalise_mobile
from .services import normalise_refund


class OptionalIdField(serializers.CharField):
    """An optional outside identifier: blank or null means none, stored as NULL so that the
    brand's unique constraint on it leaves members without one alone."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        return super().run_validation(data) or None


class MobileField(OptionalIdField):
    """A mobile number, normalised; blank is none, like any optional identifier."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalise_mobile(value) or None
        except ValueError:
            raise serializers.ValidationError(_("Not a valid mobile number.")) from None


class GuideField(TenantRelatedField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(Staff, **kwargs)


class StoreCodeField(TenantSlugRelatedField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(Store, "code", **kwargs)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A member",
            value={
                "external_id": "M000123", "name": "王芳", "mobile": "13800138000", "gender": "female",
                "birthday": "1994-05-12", "city": "上海", "joined_at": "2025-03-01T10:00:00+08:00",
                "source_channel": "store_qr", "store_code": "SH01", "guide": 12,
                "wecom_external_userid": "wmqPmWDAAAnV7xJ2oTgb3FqZ8tLwPvCQ", "contact_status": "active",
                "attributes": {"size": "M"},
            },
            request_only=True,
        ),
        OpenApiExample(
            "A member",
            value={
                "id": 101, "external_id": "M000123", "name": "王芳", "mobile": "13800138000", "gender": "female",
                "birthday": "1994-05-12", "city": "上海", "joined_at": "2025-03-01T10:00:00+08:00",
                "source_channel": "store_qr", "store_code": "SH01", "guide": 12,
                "wecom_external_userid": "wmqPmWDAAAnV7xJ2oTgb3FqZ8tLwPvCQ", "contact_status": "active",
                "contact_status_changed_at": None, "attributes": {"size": "M"},
                "created_at": "2025-03-01T10:00:02+08:00", "updated_at": "2025-11-01T14:33:10+08:00",
            },
            response_only=True,
        ),
    ]
)
class MemberSerializer(serializers.ModelSerializer):
    mobile = MobileField()
    store_code = StoreCodeField(source="home_store")
    guide = GuideField(source="owner_guide")
    wecom_external_userid = OptionalIdField(
        help_text=_("The customer's WeCom external user id (external_userid). One member per id in the brand; "
                    "null or blank for none.")
    )
    joined_at = serializers.DateTimeField(required=False)

    class Meta:
        model = Member
        fields = [
            "id", "external_id", "name", "mobile", "gender", "birthday", "city", "joined_at", "source_channel",
            "store_code", "guide", "wecom_external_userid", "contact_status", "contact_status_changed_at",
            "attributes", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "contact_status_changed_at", "created_at", "updated_at"]
        validators = []  # uniqueness is the upsert's business; it answers per item

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("Must be a JSON object."))
        return value


class MemberUpsertSerializer(MemberSerializer):
    """One item of POST /members/bulk/: every field but external_id is optional on update."""

    class Meta(MemberSerializer.Meta):
        extra_kwargs = {"external_id": {"validators": []}}


class OrderLineSerializer(serializers.ModelSerializer):
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))

    class Meta:
        model = OrderLine
        fields = ["sku", "name", "category", "quantity", "unit_price", "amount"]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "An order",
            value={
                "external_id": "SO20251101001", "member_external_id": "M000123", "mobile": "13800138000",
                "store_code": "SH01", "guide": 12, "placed_at": "2025-11-01T14:32:00+08:00", "status": "paid",
                "total": "399.00", "discount": "40.00", "refunded_amount": "0.00",
                "lines": [
                    {"sku": "TS-001-M", "name": "基础圆领T恤", "category": "apparel", "quantity": 2,
                     "unit_price": "99.50", "amount": "199.00"},
                    {"sku": "BG-210", "name": "帆布托特包", "category": "shoes_bags", "quantity": 1,
                     "unit_price": "200.00", "amount": "200.00"},
                ],
            },
            request_only=True,
        ),
        OpenApiExample(
            "An order",
            value={
                "id": 9001, "external_id": "SO20251101001", "member_id": 101, "member_external_id": "M000123",
                "mobile": "13800138000", "store_code": "SH01", "guide": 12, "placed_at": "2025-11-01T14:32:00+08:00",
                "status": "partially_refunded", "total": "399.00", "discount": "40.00", "refunded_amount": "200.00",
                "lines": [
                    {"sku": "TS-001-M", "name": "基础圆领T恤", "category": "apparel", "quantity": 2,
                     "unit_price": "99.50", "amount": "199.00"},
                    {"sku": "BG-210", "name": "帆布托特包", "category": "shoes_bags", "quantity": 1,
                     "unit_price": "200.00", "amount": "200.00"},
                ],
                "created_at": "2025-11-01T14:32:05+08:00", "updated_at": "2025-11-03T10:12:00+08:00",
            },
            response_only=True,
        ),
    ]
)
class OrderSerializer(serializers.ModelSerializer):
    mobile = MobileField()
    store_code = StoreCodeField(source="store")
    guide = GuideField()
    lines = OrderLineSerializer(many=True, required=False)
    member_id = serializers.IntegerField(read_only=True)
    total = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))
    discount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False)
    refunded_amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False
    )

    class Meta:
        model = Order
        fields = [
            "id", "external_id", "member_id", "member_external_id", "mobile", "store_code", "guide", "placed_at",
            "status", "total", "discount", "refunded_amount", "lines", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "member_id", "created_at", "updated_at"]
        validators = []
        extra_kwargs = {"status": {"required": False}}

    def validate(self, attrs):
        if self.instance is not None:
            total = attrs.get("total", self.instance.total)
            attrs.setdefault("total", total)
        attrs["mobile"] = attrs.get("mobile") or ""
        attrs = normalise_refund(attrs)
        refunded = attrs.get("refunded_amount") or Decimal(0)
        if refunded > attrs["total"]:
            raise serializers.ValidationError({"refunded_amount": [_("Cannot be more than the total.")]})
        if attrs.get("status") == Order.Status.PARTIALLY_REFUNDED and not refunded:
            raise serializers.ValidationError(
                {"refunded_amount": [_("A partially refunded order needs the refunded amount.")]}
            )
        if self.instance is None and not (attrs.get("member_external_id") or attrs.get("mobile")):
            raise serializers.ValidationError(
                {"member_external_id": [_("Give member_external_id or mobile so the order can be bound.")]}
            )
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("mobile") == "":
            data["mobile"] = None
        return data


class EventSerializer(serializers.ModelSerializer):
    member_external_id = serializers.CharField(max_length=64, write_only=True)
    external_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)

    class Meta:
        model = Event
        fields = ["id", "external_id", "member_external_id", "type", "occurred_at", "properties"]
        read_only_fields = ["id"]
        validators = []

    def validate_properties(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("Must be a JSON object."))
        return value


EVENT_EXAMPLE = {
    "id": 40001, "external_id": "wx-cb-77812", "member_id": 101, "member_external_id": "M000123",
    "type": "contact_deleted", "type_label": "Deleted the guide", "occurred_at": "2025-11-02T21:14:05+08:00",
    "properties": {"guide_userid": "zhangwei"},
}


@extend_schema_serializer(examples=[OpenApiExample("An event", value=EVENT_EXAMPLE, response_only=True)])
class EventReadSerializer(serializers.ModelSerializer):
    """An event as listed: read it from a queryset with select_related("member")."""

    member_id = serializers.IntegerField()
    member_external_id = serializers.CharField(source="member.external_id")
    type_label = serializers.CharField(source="get_type_display")

    class Meta:
        model = Event
        fields = [
            "id", "external_id", "member_id", "member_external_id", "type", "type_label", "occurred_at", "properties",
        ]


class OrderSummarySerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    spend = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded = serializers.DecimalField(max_digits=14, decimal_places=2)
    first_order_at = serializers.DateTimeField(allow_null=True)
    last_order_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A member's 360 view",
            value={
                "id": 101, "external_id": "M000123", "name": "王芳", "mobile": "13800138000", "gender": "female",
                "birthday": "1994-05-12", "city": "上海", "joined_at": "2025-03-01T10:00:00+08:00",
                "source_channel": "store_qr", "store_code": "SH01", "guide": 12,
                "wecom_external_userid": "wmqPmWDAAAnV7xJ2oTgb3FqZ8tLwPvCQ", "contact_status": "active",
                "contact_status_changed_at": None, "attributes": {"size": "M"},
                "created_at": "2025-03-01T10:00:02+08:00", "updated_at": "2025-11-01T14:33:10+08:00",
                "store_name": "上海静安店", "guide_name": "张伟",
                "order_summary": {"orders": 3, "spend": "1097.00", "refunded": "0.00",
                                  "first_order_at": "2025-03-08T16:20:00+08:00",
                                  "last_order_at": "2025-11-01T14:32:00+08:00"},
                "recent_orders": [{
                    "id": 9001, "external_id": "SO20251101001", "member_id": 101, "member_external_id": "M000123",
                    "mobile": "13800138000", "store_code": "SH01", "guide": 12,
                    "placed_at": "2025-11-01T14:32:00+08:00", "status": "paid", "total": "399.00",
                    "discount": "40.00", "refunded_amount": "0.00",
                    "lines": [{"sku": "TS-001-M", "name": "基础圆领T恤", "category": "apparel", "quantity": 2,
                               "unit_price": "99.50", "amount": "199.00"}],
                    "created_at": "2025-11-01T14:32:05+08:00", "updated_at": "2025-11-01T14:32:05+08:00",
                }],
                "recent_events": [{**EVENT_EXAMPLE, "type": "message_read", "type_label": "Message read"}],
            },
            response_only=True,
        )
    ]
)
class Member360Serializer(MemberSerializer):
    """The 360 payload: profile, order summary, recent orders and recent events."""

    store_name = serializers.CharField(source="home_store.name", default=None, read_only=True)
    guide_name = serializers.CharField(source="owner_guide.name", default=None, read_only=True)
    order_summary = serializers.SerializerMethodField()
    recent_orders = serializers.SerializerMethodField()
    recent_events = serializers.SerializerMethodField()

    class Meta(MemberSerializer.Meta):
        fields = MemberSerializer.Meta.fields + [
            "store_name", "guide_name", "order_summary", "recent_orders", "recent_events"
        ]

    @extend_schema_field(OrderSummarySerializer)
    def get_order_summary(self, member):
        from .queries import order_summary

        return OrderSummarySerializer(order_summary(member)).data

    @extend_schema_field(OrderSerializer(many=True))
    def get_recent_orders(self, member):
        from .queries import recent_orders

        return OrderSerializer(recent_orders(member), many=True).data

    @extend_schema_field(EventReadSerializer(many=True))
    def get_recent_events(self, member):
        from .queries import recent_events

        return EventReadSerializer(recent_events(member), many=True).data


__all__ = [
    "ContactStatus", "EventType", "Gender", "MemberSerializer", "MemberUpsertSerializer", "OrderSerializer",
    "EventSerializer", "Member360Serializer",
]
