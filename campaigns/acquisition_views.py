"""Dashboard pages of acquisition results (by channel, code, store and guide, with the leaderboard)
and of churn alerts (流失提醒). Thin: the queries and services do the work."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from scrm.models import Staff, Store
from scrm.views import staff_required

from . import acquisition_queries as queries
from . import alerts, services
from .acquisition_filters import ChurnAlertFilterSet
from .acquisition_serializers import AcquisitionParamsSerializer, ChurnAlertParamsSerializer, HandToCampaignSerializer
from .acquisition_services import active_campaigns
from .acquisition_services import hand_to_campaign as hand_over
from .models import LiveCode

PAGE_SIZE = 50
PRESETS = (7, 30, 60, 90)
ALERTS_SHOWN = 50


def _read(serializer_class, request, as_of, data=None):
    """Valid parameters, or the defaults with the errors to show beside the form."""
    context = {"tenant": request.tenant, "as_of": as_of, "request": request}
    params = serializer_class(data=data if data is not None else request.GET, context=context)
    if params.is_valid():
        return params.validated_data, {}
    errors = {field: [str(m) for m in msgs] for field, msgs in params.errors.items()}
    fallback = serializer_class(data={}, context=context)
    fallback.is_valid(raise_exception=True)
    return fallback.validated_data, errors


def _chart(days):
    return {
        "labels": [d["day"].strftime("%m-%d") for d in days],
        "views": [d["views"] for d in days],
        "joins": [d["joins"] for d in days],
        "converted": [d["converted"] for d in days],
        "names": {"views": _("Landing views"), "joins": _("Joins"), "converted": _("Converted within 30 days")},
    }


def _preset(start, end, as_of, tenant):
    today = as_of.astimezone(tenant.zone).date()
    length = (end - start).days + 1
    return length if end == today and length in PRESETS else None


@staff_required
def acquisition(request):
    as_of = timezone.now()
    data, errors = _read(AcquisitionParamsSerializer, request, as_of, _with_preset(request, as_of))
    params = queries.Params(data["group"], data["start"], data["end"])
    figures = queries.results(request.tenant, params, as_of, request.staff)
    board = queries.leaderboard(request.tenant, params.start, params.end, as_of, request.staff)
    return render(request, "campaigns/acquisition/results.html", {
        "params": params, "errors": errors, "figures": figures, "board": board,
        "chart": _chart(figures["days"]), "groups": list(queries.GROUPS.items()),
        "group_label": queries.GROUPS[params.group], "presets": PRESETS,
        "preset": _preset(params.start, params.end, as_of, request.tenant),
        "shows_views": params.group != "guide", "tab": "acquisition",
        "leaderboards": [
            (board["stores"], _("Store leaderboard"), "trophy", "store-board", _("Store")),
            (board["guides"], _("Guide leaderboard"), "award", "guide-board", _("Guide")),
        ],
    })


def _with_preset(request, as_of):
    """?days=7 is the last 7 days up to today; explicit dates win."""
    data = request.GET.copy()
    days = data.pop("days", [None])[-1]
    if days and days.isdigit() and int(days) in PRESETS and not (data.get("start") or data.get("end")):
        start, end = queries.default_period(request.tenant, as_of, int(days))
        data["start"], data["end"] = start.isoformat(), end.isoformat()
    for key in ("start", "end"):
        if key in data and not data[key]:
            del data[key]
    return data


@staff_required
def live_code_results(request, pk):
    """One live code's last 30 days: headline figures and the daily chart (loaded into its page)."""
    as_of = timezone.now()
    live_code = get_object_or_404(LiveCode, pk=pk)
    start, end = queries.default_period(request.tenant, as_of)
    figures = queries.results(request.tenant, queries.Params("live_code", start, end, live_code.pk), as_of, request.staff)
    return render(request, "campaigns/acquisition/_live_code.html", {
        "live_code": live_code, "totals": figures["totals"], "chart": _chart(figures["days"]),
        "start": start, "end": end,
    })


# ---------------------------------------------------------------- churn alerts

def _filter_choices(staff):
    stores = Store.objects.order_by("code")
    guides = Staff.objects.filter(role=Staff.Role.GUIDE).order_by("name")
    if staff.sees_all_members:
        return stores, guides
    if staff.role == Staff.Role.GUIDE:
        return stores.none(), guides.filter(pk=staff.pk)
    return stores.filter(pk__in=staff.stores.all()), guides.filter(stores__in=staff.stores.all()).distinct()


def _may_hand_over(staff):
    return staff.role != Staff.Role.GUIDE


@staff_required
def churn_alerts(request):
    as_of = timezone.now()
    data, errors = _read(ChurnAlertParamsSerializer, request, as_of, _with_preset(request, as_of))
    store, guide = data.get("store_id"), data.get("guide_id")
    members = queries.deletions(
        request.tenant, request.staff, data["start"], data["end"],
        store_id=store.pk if store else None, guide_id=guide.pk if guide else None,
    )
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    ids = [m.pk for m in rows]
    stages, tags = queries.stages_of(ids), queries.tags_of(ids)
    for member in rows:
        member.stage, member.warning = stages.get(member.pk, (None, False))
        member.tag_list = tags.get(member.pk, [])
        member.days_as_contact = queries.days_as_contact(member)
    stores, guides = _filter_choices(request.staff)
    query = request.GET.copy()
    query.pop("page", None)
    recorded = _recorded_alerts(request.staff, data)
    return render(request, "campaigns/acquisition/churn_alerts.html", {
        "rows": rows, "page": page, "total": page.paginator.count, "errors": errors, "data": data,
        "over": queries.guides_over_threshold(request.tenant, request.staff, data["start"], data["end"], data["threshold"]),
        "stores": stores, "guides": guides, "presets": PRESETS,
        "preset": _preset(data["start"], data["end"], as_of, request.tenant),
        "campaigns": active_campaigns() if _may_hand_over(request.staff) else [],
        "may_hand_over": _may_hand_over(request.staff), "query": query.urlencode(), "tab": "churn_alerts",
        "alerts": recorded, "may_acknowledge": alerts.may_acknowledge(request.staff),
    })


CHANNELS = (("wecom", gettext_lazy("WeCom")), ("email", gettext_lazy("Email")))
CHANNEL_STATUSES = {
    alerts.Channel.SENT: (gettext_lazy("sent"), "active"),
    alerts.Channel.FAILED: (gettext_lazy("failed"), "refunded"),
    alerts.Channel.OFF: (gettext_lazy("not set up"), "muted"),
    alerts.Channel.NOBODY: (gettext_lazy("nobody to reach"), "muted"),
}


def _recorded_alerts(staff, data):
    """The period's mass-loss alerts (same store and guide filters), each with its channels to show."""
    store, guide = data.get("store_id"), data.get("guide_id")
    found = ChurnAlertFilterSet({
        "start": data["start"], "end": data["end"],
        "store_id": store.pk if store else None, "guide_id": guide.pk if guide else None,
    }, queryset=queries.visible_alerts(staff)).qs[:ALERTS_SHOWN]
    rows = list(found)
    for alert in rows:
        alert.channel_list = []
        for key, label in CHANNELS:
            sent = alert.channels.get(key)
            if sent:
                status, css = CHANNEL_STATUSES.get(sent.get("status"), (sent.get("status"), "muted"))
                alert.channel_list.append({"key": key, "label": label, "status": status, "css": css,
                                           "to": ", ".join(sent.get("to") or []), "detail": sent.get("detail", "")})
    return rows


@staff_required
@require_POST
def acknowledge_alert(request, pk):
    alert = get_object_or_404(queries.visible_alerts(request.staff), pk=pk)
    if not alerts.may_acknowledge(request.staff):
        raise PermissionDenied(_("Only store managers and operators acknowledge mass-loss alerts."))
    alerts.acknowledge(alert, request.staff, timezone.now())
    messages.success(request, _("Alert acknowledged: %(guide)s, %(day)s.") % {
        "guide": alert.guide.name, "day": alert.day.isoformat(),
    })
    return redirect(_back(request))


def _back(request):
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = ""
    return back or "campaigns:churn_alerts"


@staff_required
@require_POST
def hand_to_campaign(request):
    if not _may_hand_over(request.staff):
        raise PermissionDenied(_("Only store managers and operators hand members to a campaign."))
    back = _back(request)
    body = HandToCampaignSerializer(data={
        "campaign": request.POST.get("campaign") or None, "members": request.POST.getlist("members"),
    })
    if not body.is_valid():
        for field, errors in body.errors.items():
            for error in (errors if isinstance(errors, list) else [errors]):
                messages.error(request, _first(error))
        return redirect(back)
    ids = sorted(set(body.validated_data["members"]))
    visible = set(queries.visible_deletions(request.staff).filter(pk__in=ids).values_list("pk", flat=True))
    ids = [i for i in ids if i in visible]
    campaign = body.validated_data["campaign"]
    try:
        outcome = hand_over(request.tenant, campaign, ids, timezone.now())
    except services.CampaignError as exc:
        for errors in exc.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    messages.success(request, _(
        "%(enrolled)d of %(selected)d members enrolled in %(campaign)s; %(already)d were in it already, "
        "%(outside)d are outside its audience."
    ) % {**outcome, "outside": outcome["not_in_audience"], "campaign": campaign.name})
    return redirect(back)


def _first(error):
    if isinstance(error, dict):
        return " ".join(_first(v) for v in error.values())
    if isinstance(error, list):
        return " ".join(_first(v) for v in error)
    return str(error)
