"""Dashboard pages of members: the list with filters and search, and the 360° page."""
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _

from scrm.models import Staff, Store
from scrm.views import staff_required

from .filters import MemberFilterSet
from .models import Event, Order
from .queries import order_summary, visible_members

PAGE_SIZE = 50
ORDERS_PAGE = 10
EVENTS_PAGE = 30


# Apps built on members add columns to the list (a lifecycle stage, say) by appending a function
# queryset -> queryset here in their AppConfig.ready(), and templates for the head and the cells.
LIST_QUERYSET_HOOKS = []


def _page_number(request):
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


def _prepare_filter_form(filterset, staff):
    """Offer only the stores and guides whose members the caller may see; "All" for no choice."""
    fields = filterset.form.fields
    for field in fields.values():
        if getattr(field, "empty_label", None) is not None:
            field.empty_label = _("All")
            field.widget.choices = field.choices
    if staff.role == Staff.Role.GUIDE:
        fields.pop("guide_id", None)
        if "store_id" in fields:
            fields["store_id"].queryset = Store.objects.filter(pk__in=staff.stores.values("pk"))
    elif not staff.sees_all_members:
        if "store_id" in fields:
            fields["store_id"].queryset = Store.objects.filter(pk__in=staff.stores.values("pk"))
        if "guide_id" in fields:
            fields["guide_id"].queryset = Staff.objects.filter(
                role=Staff.Role.GUIDE, stores__in=staff.stores.values("pk")
            ).distinct()


@staff_required
def member_list(request):
    queryset = visible_members(request.staff).select_related("home_store", "owner_guide")
    for hook in LIST_QUERYSET_HOOKS:
        queryset = hook(queryset)
    filterset = MemberFilterSet(request.GET or None, queryset=queryset, request=request)
    _prepare_filter_form(filterset, request.staff)
    page = _page_number(request)
    # No COUNT(*): a brand has a million members; one extra row tells whether a next page exists.
    start = (page - 1) * PAGE_SIZE
    valid = not filterset.is_bound or filterset.is_valid()
    rows = list(filterset.qs.order_by("-joined_at", "-pk")[start:start + PAGE_SIZE + 1]) if valid else []
    context = {
        "filterset": filterset,
        "members": rows[:PAGE_SIZE],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "first_row": start + 1,
        "last_row": start + min(len(rows), PAGE_SIZE),
        "querystring": _querystring_without_page(request),
        "filters_active": any(value for name, value in request.GET.items() if name not in ("q", "page")),
    }
    partial = request.headers.get("HX-Request") and request.headers.get("HX-Target") == "member-results"
    template = "members/_member_table.html" if partial else "members/list.html"
    return render(request, template, context)


def _querystring_without_page(request):
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _visible_member(request, pk):
    return get_object_or_404(visible_members(request.staff).select_related("home_store", "owner_guide"), pk=pk)


def _orders(member, offset):
    rows = list(
        Order.objects.filter(member=member)
        .select_related("store", "guide")
        .prefetch_related("lines")
        .order_by("-placed_at", "-pk")[offset:offset + ORDERS_PAGE + 1]
    )
    return {"orders": rows[:ORDERS_PAGE], "orders_next": offset + ORDERS_PAGE if len(rows) > ORDERS_PAGE else None}


def _events(member, offset):
    rows = list(Event.objects.filter(member=member).order_by("-occurred_at", "-pk")[offset:offset + EVENTS_PAGE + 1])
    return {"events": rows[:EVENTS_PAGE], "events_next": offset + EVENTS_PAGE if len(rows) > EVENTS_PAGE else None}


def _offset(request):
    try:
        return max(0, int(request.GET.get("offset", "0")))
    except ValueError:
        raise Http404 from None


@staff_required
def member_detail(request, pk):
    member = _visible_member(request, pk)
    summary = order_summary(member)
    context = {
        "member": member,
        "summary": summary,
        "average_order": summary["spend"] / summary["orders"] if summary["orders"] else None,
    }
    context.update(_orders(member, 0))
    context.update(_events(member, 0))
    return render(request, "members/detail.html", context)


@staff_required
def member_orders(request, pk):
    member = _visible_member(request, pk)
    return render(request, "members/_orders.html", {"member": member, **_orders(member, _offset(request))})


@staff_required
def member_events(request, pk):
    member = _visible_member(request, pk)
    return render(request, "members/_events.html", {"member": member, **_events(member, _offset(request))})
