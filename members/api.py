from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from scrm.api import (
    CursorPagination, TenantModelViewSet, TenantViewSetMixin, bulk_response, idempotent, read_bulk_items,
    validate_bulk,
)

from . import services
from .filters import EventFilterSet, MemberFilterSet, OrderFilterSet
from .models import Event, Member, Order
from .queries import visible_members
from .serializers import (
    EventReadSerializer, EventSerializer, Member360Serializer, MemberSerializer, MemberUpsertSerializer,
    OrderSerializer,
)

BULK_EXAMPLE_RESPONSE = OpenApiExample(
    "Per-item answer",
    value={
        "summary": {"created": 1, "updated": 0, "unchanged": 1, "error": 1},
        "results": [
            {"index": 0, "id": 101, "external_id": "M1", "status": "created"},
            {"index": 1, "id": 57, "external_id": "M2", "status": "unchanged"},
            {"index": 2, "status": "error", "errors": {"mobile": ["Not a valid mobile number."]}},
        ],
    },
    response_only=True,
)


class BulkResponseSerializer(serializers.Serializer):
    summary = serializers.DictField(child=serializers.IntegerField())
    results = serializers.ListField(child=serializers.DictField())


def _single(outcomes, errors):
    """The answer of a one-item service call: the outcome, or a 400 with the item's field errors."""
    if errors:
        raise ValidationError(errors[0])
    return outcomes[0]


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

    @extend_schema(request=MemberUpsertSerializer(many=True), responses=BulkResponseSerializer, examples=[BULK_EXAMPLE_RESPONSE])
    @action(detail=False, methods=["post"])
    @idempotent
    def bulk(self, request):
        """Upsert up to 1,000 members by external_id; answers per item in input order."""
        items = read_bulk_items(request)
        valid, errors = validate_bulk(MemberUpsertSerializer, items, self.get_serializer_context())
        outcomes, more = services.upsert_members(self.tenant, valid)
        errors.update(more)
        return bulk_response(len(items), outcomes, errors)


class OrderViewSet(TenantModelViewSet):
    """Orders with their lines. PATCH records refunds (status, refunded_amount)."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilterSet
    pagination_class = CursorPagination
    queryset = Order.objects.unscoped().none()

    def get_queryset(self):
        qs = Order.objects.select_related("store", "guide").prefetch_related("lines")
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs

    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if Order.objects.filter(external_id=serializer.validated_data["external_id"]).exists():
            raise ValidationError({"external_id": [_("An order with this external id already exists.")]})
        outcome = _single(*services.ingest_orders(self.tenant, [(0, serializer.validated_data)]))
        return Response(self.get_serializer(self.get_queryset().get(pk=outcome["id"])).data, status=status.HTTP_201_CREATED)

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
        return Response(self.get_serializer(self.get_queryset().get(pk=order.pk)).data)

    @extend_schema(request=OrderSerializer(many=True), responses=BulkResponseSerializer, examples=[BULK_EXAMPLE_RESPONSE])
    @action(detail=False, methods=["post"])
    @idempotent
    def bulk(self, request):
        """Create or update up to 1,000 orders by external_id; the same order again is 'unchanged'."""
        items = read_bulk_items(request)
        valid, errors = validate_bulk(OrderSerializer, items, self.get_serializer_context())
        outcomes, more = services.ingest_orders(self.tenant, valid)
        errors.update(more)
        return bulk_response(len(items), outcomes, errors)


class EventViewSet(TenantViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Interaction events. Write them with POST /events/bulk/."""

    serializer_class = EventReadSerializer
    filterset_class = EventFilterSet
    pagination_class = CursorPagination
    queryset = Event.objects.unscoped().none()

    def get_queryset(self):
        qs = Event.objects.all()
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs

    @extend_schema(request=EventSerializer(many=True), responses=BulkResponseSerializer, examples=[BULK_EXAMPLE_RESPONSE])
    @action(detail=False, methods=["post"])
    @idempotent
    def bulk(self, request):
        """Record up to 1,000 events; an event whose external_id is known is 'unchanged'."""
        items = read_bulk_items(request)
        valid, errors = validate_bulk(EventSerializer, items, self.get_serializer_context())
        outcomes, more = services.ingest_events(self.tenant, valid)
        errors.update(more)
        return bulk_response(len(items), outcomes, errors)

