"""Dashboard pages of the performance report (业绩分佣) and a campaign's results over time."""
import csv
from datetime import timedelta

from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.models import Staff, Store
from scrm.views import settings_required, staff_required

from . import reports
from .models import Campaign

PERIODS = [(7, gettext_lazy("Last 7 days")), (30, gettext_lazy("Last 30 days")), (90, gettext_lazy("Last 90 days"))]


class PerformanceFilterForm(forms.Form):
    """A preset period or chosen local days, a store the viewer may see, and the column to sort by."""

    days = forms.TypedChoiceField(
        label=gettext_lazy("Period"), choices=PERIODS, coerce=int, required=False, empty_value=30, initial=30,
    )
    since = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    store_id = forms.ModelChoiceField(
        label=gettext_lazy("Store"), queryset=Store.objects.none(), required=False, empty_label=gettext_lazy("All stores"),
    )

    def __init__(self, *args, staff, today, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        stores = Store.objects.order_by("code")
        if not staff.sees_all_members:
            stores = stores.filter(pk__in=staff.stores.values("pk"))
        self.fields["store_id"].queryset = stores

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since or until:
            until = until or self.today
            since = since or until - timedelta(days=29)
        else:
            until = self.today
            since = until - timedelta(days=(data.get("days") or 30) - 1)
        if since > until:
            self.add_error("since", _("Must not be after the last day."))
        elif (until - since).days >= reports.MAX_PERIOD_DAYS:
            self.add_error("since", _("A period may span at most 366 days."))
        data["period"] = (since, until)
        return data


def _columns(view):
    figures = [
        ("members", _("Members")), ("tasks_assigned", _("Tasks")), ("tasks_done", _("Done")),
        ("reply_rate", _("Reply rate")), ("conversion_rate", _("Conversion")), ("orders", _("Orders")),
        ("sales", _("Sales")), ("commission", _("Commission")),
    ]
    if view == "stores":
        return [("name", _("Store")), ("guides", _("Guides")), *figures]
    return [("name", _("Guide")), *figures]


def _csv(view, data):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{view}-performance-{data['since']:%Y%m%d}-{data['until']:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")  # Excel opens UTF-8 Chinese names only with the byte-order mark.
    writer = csv.writer(response)
    columns = _columns(view)
    extra = [_("Stores"), _("Sells far less than")] if view == "guides" else [_("Code")]
    writer.writerow([label for _key, label in columns] + extra)
    for row in data["rows"]:
        values = [row[key] for key, _label in columns]
        if view == "guides":
            gap = row["sales_gap"]
            values += [" / ".join(s["name"] for s in row["stores"]), f"{gap['peer_name']} ({gap['peer_sales']})" if gap else ""]
        else:
            values += [row["code"]]
        writer.writerow(values)
    return response


@staff_required
def performance(request):
    staff, tenant = request.staff, request.tenant
    today = reports.default_period(tenant, timezone.now())[1]
    view = "stores" if request.GET.get("view") == "stores" and staff.role != Staff.Role.GUIDE else "guides"
    params = request.GET.copy()
    params.setdefault("days", "30")
    form = PerformanceFilterForm(params, staff=staff, today=today)
    if form.is_valid():
        (since, until), store = form.cleaned_data["period"], form.cleaned_data.get("store_id")
    else:
        since, until, store = today - timedelta(days=29), today, None
    orderings = reports.STORE_ORDERINGS if view == "stores" else reports.GUIDE_ORDERINGS
    ordering = request.GET.get("ordering") or "-sales"
    if ordering.lstrip("-") not in orderings:
        ordering = "-sales"
    report = reports.store_performance if view == "stores" else reports.guide_performance
    data = report(tenant, since, until, staff, store.pk if store else None, ordering)
    if request.GET.get("export") == "csv":
        return _csv(view, data)
    rows = data["rows"]
    query = request.GET.copy()
    query.pop("ordering", None)
    query.pop("export", None)
    chart_rows = sorted(rows, key=lambda r: r["sales"], reverse=True)[:20]
    chart = {
        "labels": [r["name"] for r in chart_rows],
        "sales": [str(r["sales"]) for r in chart_rows],
        "commission": [str(r["commission"]) for r in chart_rows],
        "conversion": [round(100 * r["conversion_rate"], 1) for r in chart_rows],
        "names": {"sales": _("Attributed sales (¥)"), "commission": _("Commission (¥)"), "conversion": _("Conversion (%)")},
    }
    return render(request, "campaigns/performance.html", {
        "tab": "performance", "view": view, "form": form, "data": data, "rows": rows, "ordering": ordering,
        "columns": _columns(view), "query": query.urlencode(), "chart": chart,
        "totals": reports.totals(rows, data["commission_rate"]),
        "flagged": sum(1 for r in rows if r.get("sales_gap")),
        "similar_help": reports.SIMILAR_HELP % {
            "points": reports.SIMILAR_MIX_POINTS, "min": reports.MIN_MEMBERS_TO_COMPARE,
            "orders": reports.MIN_ORDERS_TO_COMPARE,
        },
        "may_see_stores": staff.role != Staff.Role.GUIDE,
    })


@settings_required
def campaign_over_time(request, pk):
    """A campaign's enrolled, touched, replied and converted per variant and local day, for its chart."""
    campaign = get_object_or_404(Campaign, pk=pk)
    return JsonResponse(reports.campaign_over_time(campaign, request.tenant, timezone.now()))
