from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from scrm.api import (
    IDEMPOTENCY_CONFLICT_RESPONSE, IDEMPOTENCY_KEY, INVALID_RESPONSE, CursorPagination, TenantModelViewSet,
    TenantViewSetMixin, bulk_response, bulk_schema, idempotent, read_bulk_items, validate_bulk,
)

from . import services
from .filters import EventFilterSet, MemberFilterSet, OrderFilterSet
from .models import Event, Member, Order
from .queries import visible_members
from .serializers import (
    EventReadSerializer, EventSerializer, Member360Serializer, MemberSerializer, MemberUpsertSerializer,
    OrderSerializer,
)


def create_schema(serializer_class):
    return extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializer_class, 400: INVALID_RESPONSE, 422: IDEMPOTENCY_CONFLICT_RESPONSE},
    )


MEMBER_BATCH = [
    {"external_id": "M000123", "name": "王芳", "mobile": "13800138000", "store_code": "SH01", "guide": 12,
     "wecom_external_userid": "wmqPmWDAAAnV7xJ2oTgb3FqZ8tLwPvCQ", "joined_at": "2025-03-01T10:00:00+08:00",
     "source_channel": "store_qr"},
    {"external_id": "M000124", "contact_status": "deleted_by_customer"},
    {"external_id": "M000125", "mobile": "12345"},
]
MEMBER_ANSWER = {
    "summary": {"created": 1, "updated": 1, "unchanged": 0, "error": 1},
    "results": [
        {"index": 0, "id": 101, "external_id": "M000123", "status": "created"},
        {"index": 1, "id": 57, "external_id": "M000124", "status": "updated"},
        {"index": 2, "external_id": "M000125", "status": "error", "errors": {"mobile": ["Not a valid mobile number."]}},
    ],
}
ORDER_BATCH = [
    {"external_id": "SO20251101001", "member_external_id": "M000123", "store_code": "SH01",
     "placed_at": "2025-11-01T14:32:00+08:00", "total": "399.00", "discount": "40.00",
     "lines": [{"sku": "TS-001-M", "name": "基础圆领T恤", "category": "apparel", "quantity": 2,
                "unit_price": "99.50", "amount": "199.00"},
               {"sku": "BG-210", "name": "帆布托特包", "category": "shoes_bags", "quantity": 1,
                "unit_price": "200.00", "amount": "200.00"}]},
    {"external_id": "SO20251101002", "mobile": "13900139000", "placed_at": "2025-11-01T15:05:00+08:00",
     "total": "120.00", "lines": [{"sku": "SK-7", "quantity": 1, "unit_price": "120.00", "amount": "120.00"}]},
    {"external_id": "SO20251020007", "member_external_id": "M000088", "placed_at": "2025-10-20T11:00:00+08:00",
     "total": "259.00", "status": "refunded"},
]
ORDER_ANSWER = {
    "summary": {"created": 2, "updated": 1, "unchanged": 0, "error": 0},
    "results": [
        {"index": 0, "id": 9001, "external_id": "SO20251101001", "status": "created", "member_id": 101},
        {"index": 1, "id": 9002, "external_id": "SO20251101002", "status": "created", "member_id": None},
        {"index": 2, "id": 8712, "external_id": "SO20251020007", "status": "updated", "member_id": 88},
    ],
}
EVENT_BATCH = [
    {"external_id": "wx-cb-77812", "member_external_id": "M000123", "type": "contact_deleted",
     "occurred_at": "2025-11-02T21:14:05+08:00", "properties": {"guide_userid": "zhangwei"}},
    {"external_id": "msg-5521-M000124", "member_external_id": "M000124", "type": "message_read",
     "occurred_at": "2025-11-02T09:30:00+08:00", "properties": {"campaign": 12}},
]
EVENT_ANSWER = {
    "summary": {"created": 1, "updated": 0, "unchanged": 1, "error": 0},
    "results": [
        {"index": 0, "id": 40001, "external_id": "wx-cb-77812", "status": "created"},
        {"index": 1, "id": 39870, "external_id": "msg-5521-M000124", "status": "unchanged"},
    ],
}


def _single(outcomes, errors):
    """The answer of a one-item service call: the outcome, or a 400 with the item's field errors."""
    if errors:
        raise ValidationError(errors[0])
    return outcomes[0]


@extend_schema_view(
    create=create_schema(MemberSerializer),
    update=extend_schema(responses={200: MemberSerializer, 400: INVALID_RESPONSE}),
    partial_update=extend_schema(responses={200: MemberSerializer, 400: INVALID_RESPONSE}),
)
class MemberViewSet(TenantModelViewSet):
    """Members. Retrieve answers the 360 payload. Guides see only their own members, store
    managers their stores' members."""

    serializer_class = MemberSerializer
    filterset_class = MemberFilterSet
    pagination_class = CursorPagination
    queryset = Member.objects.unscoped().none()

    def get_queryset(self):
        return visible_members(self.staff).select_related("home_store", "owner_guide")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return Member360Serializer
        return MemberSerializer

    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if Member.objects.filter(external_id=serializer.validated_data["external_id"]).exists():
            raise ValidationError({"external_id": [_("A member with this external id already exists.")]})
        outcome = _single(*services.upsert_members(self.tenant, [(0, serializer.validated_data)]))
        member = Member.objects.select_related("home_store", "owner_guide").get(pk=outcome["id"])
        return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        member = self.get_object()
        serializer = self.get_serializer(member, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data, external_id=member.external_id)
        if "external_id" in serializer.validated_data and serializer.validated_data["external_id"] != member.external_id:
            raise ValidationError({"external_id": [_("The external id of a member cannot change.")]})
        _single(*services.upsert_members(self.tenant, [(0, data)]))
        member.refresh_from_db()
        return Response(MemberSerializer(member).data)

    @bulk_schema(
        MemberUpsertSerializer, MEMBER_BATCH, MEMBER_ANSWER,
        gettext_lazy("Create or update up to 1,000 members by external_id; answers per item in input order."),
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    @idempotent
    def bulk(self, request):
        """Upsert up to 1,000 members by external_id; answers per item in input order."""
        items = read_bulk_items(request)
        valid, errors = validate_bulk(MemberUpsertSerializer, items, self.get_serializer_context())
        outcomes, more = services.upsert_members(self.tenant, valid)
        errors.update(more)
        return bulk_response(items, outcomes, errors)


@extend_schema_view(
    create=create_schema(OrderSerializer),
    update=extend_schema(responses={200: OrderSerializer, 400: INVALID_RESPONSE}),
    partial_update=extend_schema(responses={200: OrderSerializer, 400: INVALID_RESPONSE}),
)
class OrderViewSet(TenantModelViewSet):
    """Orders with their lines. PATCH records refunds (status, refunded_amount)."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilterSet
    pagination_class = CursorPagination
    queryset = Order.objects.unscoped().none()

    def get_queryset(self):
        qs = self._orders()
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs

    def _orders(self):
        # The answer to a create or update shows the order written even when its member is not
        # (yet) one the caller may see, e.g. a guide recording an order of a member not bound yet.
        return Order.objects.select_related("store", "guide").prefetch_related("lines")

    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if Order.objects.filter(external_id=serializer.validated_data["external_id"]).exists():
            raise ValidationError({"external_id": [_("An order with this external id already exists.")]})
        outcome = _single(*services.ingest_orders(self.tenant, [(0, serializer.validated_data)]))
        return Response(self.get_serializer(self._orders().get(pk=outcome["id"])).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        order = self.get_object()
        serializer = self.get_serializer(order, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data.get("external_id", order.external_id) != order.external_id:
            raise ValidationError({"external_id": [_("The external id of an order cannot change.")]})
        data = dict(serializer.validated_data, external_id=order.external_id)
        if "mobile" not in request.data:
            data.pop("mobile", None)
        _single(*services.ingest_orders(self.tenant, [(0, data)]))
        return Response(self.get_serializer(self._orders().get(pk=order.pk)).data)

    @bulk_schema(
        OrderSerializer, ORDER_BATCH, ORDER_ANSWER,
        gettext_lazy(
            "Create or update up to 1,000 orders by external_id; the same order again is 'unchanged'. An order "
            "binds to the member named by member_external_id or mobile, or waits until that member arrives."
        ),
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    @idempotent
    def bulk(self, request):
        """Create or update up to 1,000 orders by external_id; the same order again is 'unchanged'."""
        items = read_bulk_items(request)
        valid, errors = validate_bulk(OrderSerializer, items, self.get_serializer_context())
        outcomes, more = services.ingest_orders(self.tenant, valid)
        errors.update(more)
        return bulk_response(items, outcomes, errors)


class EventViewSet(TenantViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Interaction events. Write them with POST /events/bulk/."""

    serializer_class = EventReadSerializer
    filterset_class = EventFilterSet
    pagination_class = CursorPagination
    queryset = Event.objects.unscoped().none()

    def get_queryset(self):
        qs = Event.objects.select_related("member")
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs

    @bulk_schema(
        EventSerializer, EVENT_BATCH, EVENT_ANSWER,
        gettext_lazy(
            "Record up to 1,000 events; an event whose external_id is known is 'unchanged'. contact_deleted and "
            "contact_added move the member's contact_status."
        ),
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    @idempotent
    def bulk(self, request):
        """Record up to 1,000 events; an event whose external_id is known is 'unchanged'."""
        items = read_bulk_items(request)
        valid, errors = validate_bulk(EventSerializer, items, self.get_serializer_context())
        outcomes, more = services.ingest_events(self.tenant, valid)
        errors.update(more)
        return bulk_response(items, outcomes, errors)

