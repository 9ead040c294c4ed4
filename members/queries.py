"""Read-only helpers shared by the API and the dashboard."""
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce

from .models import Event, Member, Order

RECENT_ORDERS = 10
RECENT_EVENTS = 30

_net = ExpressionWrapper(F("total") - F("refunded_amount"), output_field=DecimalField(max_digits=14, decimal_places=2))


def visible_members(staff):
    """Members a staff member may see: guides their own, store managers their stores', others all.
    ``staff`` None means an API key: the brand's integration sees every member."""
    qs = Member.objects.all()
    if staff is None or staff.sees_all_members:
        return qs
    if staff.role == staff.Role.GUIDE:
        return qs.filter(owner_guide=staff)
    return qs.filter(home_store__in=staff.stores.all())


def order_summary(member):
    counted = Order.objects.filter(member=member).exclude(status=Order.Status.REFUNDED)
    agg = counted.aggregate(
        orders=Count("pk"),
        spend=Coalesce(Sum(_net), Value(Decimal("0")), output_field=DecimalField()),
        first_order_at=Min("placed_at"),
        last_order_at=Max("placed_at"),
    )
    agg["refunded"] = Order.objects.filter(member=member).aggregate(
        r=Coalesce(Sum("refunded_amount"), Value(Decimal("0")), output_field=DecimalField())
    )["r"]
    return agg


def recent_orders(member, limit=RECENT_ORDERS):
    return (
        Order.objects.filter(member=member)
        .select_related("store", "guide")
        .prefetch_related("lines")
        .order_by("-placed_at")[:limit]
    )


def recent_events(member, limit=RECENT_EVENTS):
    return Event.objects.filter(member=member).select_related("member").order_by("-occurred_at")[:limit]


def member_counts_by_contact_status(queryset):
    return dict(queryset.values_list("contact_status").annotate(n=Count("pk")).values_list("contact_status", "n"))


__all__ = ["visible_members", "order_summary", "recent_orders", "recent_events", "Q"]
