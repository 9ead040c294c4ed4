"""The campaigns app's panels of the dashboard home: what needs doing today, the campaigns that are
running (for store managers and guides: their own campaign results) and acquisition through live
codes. Each panel reads through the queries its own pages use, within the viewer's scope."""
import hashlib
from datetime import timedelta

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.cache import cache
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lifecycle import queries as lifecycle_queries
from lifecycle import services as lifecycle_services
from scrm.models import Staff

from .. import acquisition_queries, queries, reports
from ..models import Campaign, GuideTask, Message
from ..services import outreach_settings, visible_tasks

try:  # Mass-loss alerts are listed where the campaigns app records them.
    from ..acquisition_queries import visible_alerts
except ImportError:
    visible_alerts = None

register = template.Library()

TOP_CAMPAIGNS = 4
TOP_ACQUISITION = 3
RESULT_DAYS = 30
WARNING_DAYS = 7
ALERT_DAYS = 30
# The funnel of the running campaigns, the performance report and the acquisition figures read
# every enrolment, attributed order or join of their period (about half a second per hundred
# thousand): kept for a few minutes, per brand and viewer scope.
CACHE_SECONDS = 600
WAITING = (Message.Status.QUEUED, Message.Status.SENDING)
FAILED = (Message.Status.FAILED, Message.Status.DEAD)


def _is_guide(staff):
    return staff.role == Staff.Role.GUIDE


def _cached(key, compute):
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, CACHE_SECONDS)
    return found


def _brand(tenant):
    # The moment the brand was created tells it apart from an earlier one that had the same id.
    return f"{tenant.pk}:{tenant.created_at.timestamp()}"


def _scope(staff):
    return "all" if staff.sees_all_members else f"staff-{staff.pk}"


def _item(key, label, count, url, tone, icon, note=""):
    return {"key": key, "label": label, "count": count, "url": url, "tone": tone, "icon": icon, "note": note}


# ---------------------------------------------------------------- to do

def _task_note(tasks):
    values = {"open": intcomma(tasks["open"]), "snoozed": intcomma(tasks["snoozed"])}
    if tasks["snoozed"]:
        return _("%(open)s open in all, %(snoozed)s snoozed") % values
    return _("%(open)s open in all") % values


@register.simple_tag(takes_context=True)
def todo_dashboard(context):
    """What the viewer can act on now: overdue tasks and those due later today, the outbox (owners
    and operators), unacknowledged mass-loss alerts (those who acknowledge them) and the churn
    warnings raised this week."""
    request = context["request"]
    tenant, staff = request.tenant, request.staff
    now = timezone.now()
    _start, tonight = queries.day_bounds(tenant, now)
    open_tasks = visible_tasks(staff).filter(status=GuideTask.Status.OPEN)
    tasks = queries.task_counts(open_tasks, tenant, now)
    due_today = open_tasks.filter(due_at__gte=now, due_at__lt=tonight).count()
    task_url = reverse("guide:today") if _is_guide(staff) else reverse("campaigns:tasks")
    items = [
        _item("overdue", _("Overdue tasks"), tasks["overdue"], task_url, "danger", "alarm"),
        _item("today", _("Tasks due later today"), due_today, task_url, "primary", "check2-square", _task_note(tasks)),
    ]
    if staff.can_manage_settings:
        outbox = queries.outbox_counts()
        failed, waiting = (sum(outbox.get(s, 0) for s in statuses) for statuses in (FAILED, WAITING))
        shown = Message.Status.DEAD if outbox.get(Message.Status.DEAD) else Message.Status.FAILED
        outbox_url = reverse("campaigns:outbox")
        items += [
            _item("failed", _("Messages that failed"), failed, f"{outbox_url}?status={shown}", "danger",
                  "envelope-exclamation"),
            _item("waiting", _("Messages waiting to be sent"), waiting, f"{outbox_url}?status={Message.Status.QUEUED}",
                  "secondary", "send"),
        ]
    today = lifecycle_services.reporting_day(tenant, now)
    if visible_alerts is not None and not _is_guide(staff):
        unacknowledged = visible_alerts(staff).filter(
            acknowledged_at__isnull=True, day__gte=today - timedelta(days=ALERT_DAYS - 1),
        ).count()
        items.append(_item("alerts", _("Mass-loss alerts to acknowledge"), unacknowledged,
                           f"{reverse('campaigns:churn_alerts')}?days={ALERT_DAYS}", "danger", "person-x"))
    week = lifecycle_queries.transitions(tenant, today - timedelta(days=WARNING_DAYS - 1), today, staff)
    items.append(_item("warnings", _("Churn warnings raised in the last %(days)s days") % {"days": WARNING_DAYS},
                       week["warnings_raised"], f"{reverse('members:list')}?churn_warning=true", "warning",
                       "exclamation-triangle"))
    # Messages waiting to be sent are the outbox at work, not something to do.
    return {"items": items, "pending": sum(1 for i in items if i["count"] and i["key"] != "waiting")}


# ---------------------------------------------------------------- campaigns

def _running_campaigns(tenant):
    """The active campaigns with their funnel since they started, the best selling first."""
    active = list(Campaign.objects.filter(status=Campaign.Status.ACTIVE).only("pk", "name", "trigger"))
    days = outreach_settings(tenant).attribution_days
    ids = sorted(c.pk for c in active)
    key = f"dashboard:campaign-funnel:{_brand(tenant)}:{days}:{hashlib.sha1(repr(ids).encode()).hexdigest()}"
    figures = _cached(key, lambda: queries.funnel(Campaign.objects.filter(pk__in=ids), days)) if ids else {}
    empty = {"enrolled": 0, "touched": 0, "replied": 0, "converted": 0, "sales": 0}
    rows = []
    for campaign in active:
        f = figures.get(campaign.pk, empty)
        rows.append({
            "id": campaign.pk, "name": campaign.name, "trigger": campaign.get_trigger_display(), **f,
            "rate": f["converted"] / f["enrolled"] if f["enrolled"] else None,
        })
    rows.sort(key=lambda r: (-r["sales"], -r["converted"], -r["enrolled"], r["name"]))
    return {"kind": "campaigns", "rows": rows[:TOP_CAMPAIGNS], "active": len(rows), "attribution_days": days}


@register.simple_tag(takes_context=True)
def campaigns_dashboard(context):
    """Owners and operators: the campaigns that are running. Store managers: their stores'
    campaign results of the last 30 days; guides: their own (the performance report's figures)."""
    request = context["request"]
    tenant, staff = request.tenant, request.staff
    if staff.can_manage_settings:
        return _running_campaigns(tenant)
    since, until = reports.default_period(tenant, timezone.now(), RESULT_DAYS)
    key = f"dashboard:performance:{_brand(tenant)}:{_scope(staff)}:{until}"
    if _is_guide(staff):
        report = _cached(key, lambda: reports.guide_performance(tenant, since, until, staff))
        figures = next((r for r in report["rows"] if r["id"] == staff.pk), None)
        return {"kind": "guide", "figures": figures, "days": RESULT_DAYS, "url": reverse("campaigns:performance")}
    report = _cached(key, lambda: reports.store_performance(tenant, since, until, staff))
    return {
        "kind": "stores", "figures": reports.totals(report["rows"], report["commission_rate"]),
        "rows": report["rows"][:TOP_CAMPAIGNS], "days": RESULT_DAYS,
        "url": f"{reverse('campaigns:performance')}?view=stores",
    }


# ---------------------------------------------------------------- acquisition

def _top(rows, total, size=TOP_ACQUISITION):
    top = [r for r in rows if r["joins"]][:size]
    for row in top:
        row["pct"] = f"{100 * row['joins'] / total:.1f}" if total else "0"
    return top


@register.simple_tag(takes_context=True)
def acquisition_dashboard(context):
    """Joins through live codes in the last 30 days, by channel and by store; not for guides,
    who have no live-code pages."""
    request = context["request"]
    tenant, staff = request.tenant, request.staff
    if _is_guide(staff):
        return None
    now = timezone.now()
    start, end = acquisition_queries.default_period(tenant, now, RESULT_DAYS)

    def figures():
        params = acquisition_queries.Params("channel_type", start, end)
        by_channel = acquisition_queries.results(tenant, params, now, staff)
        # The stores' ranking needs their join counts only, not the judged figures of every join.
        since, until = acquisition_queries.period_bounds(tenant, start, end)
        joins = acquisition_queries.visible_joins(staff).filter(
            joined_at__gte=since, joined_at__lt=until, store__isnull=False,
        )
        stores = list(
            joins.values("store_id", "store__name").annotate(joins=Count("pk"))
            .order_by("-joins", "store__name")[:TOP_ACQUISITION]
        )
        return by_channel, [{"key": r["store_id"], "label": r["store__name"], "joins": r["joins"]} for r in stores]

    key = f"dashboard:acquisition:{_brand(tenant)}:{_scope(staff)}:{end}:{translation.get_language()}"
    by_channel, stores = _cached(key, figures)
    totals, days = by_channel["totals"], by_channel["days"]
    week = sum(d["joins"] for d in days[-7:])
    week_before = sum(d["joins"] for d in days[-14:-7])
    return {
        "days": RESULT_DAYS,
        "joins": totals["joins"],
        "converted": totals["converted"],
        "conversion": totals["conversion"],
        "retention_7": totals["retention_7"],
        "week": week,
        "week_change": week - week_before,
        "channels": _top(by_channel["rows"], totals["joins"]),
        "stores": _top(stores, totals["joins"]),
        "url": f"{reverse('campaigns:acquisition')}?days={RESULT_DAYS}",
        "spark": {"days": [d["day"].isoformat() for d in days], "values": [d["joins"] for d in days],
                  "colour": "#4f46e5", "type": "bar"},
    }
