from datetime import timedelta

from django import template
from django.utils import timezone

from .. import queries, services
from ..models import STAGE_ORDER, Stage

register = template.Library()

STAGE_STYLE = {
    Stage.INTRODUCTION: ("#eef0ff", "#4338ca", "person-plus"),
    Stage.GROWTH: ("#e7f7ee", "#16794a", "graph-up-arrow"),
    Stage.MATURITY: ("#e6f4fb", "#0b6a96", "gem"),
    Stage.DORMANT: ("#fff4e0", "#9a5b00", "moon"),
    Stage.CHURNED: ("#fdecec", "#b42318", "person-dash"),
}


@register.simple_tag(takes_context=True)
def member_stage(context, member):
    """The member's stage, since, warning, explanation and history (None before the first run)."""
    request = context.get("request")
    tenant = getattr(request, "tenant", None) if request else None
    if tenant is None or member is None:
        return None
    return queries.member_stage(tenant, member)


@register.inclusion_tag("lifecycle/_stage_badge.html")
def stage_badge(stage, label=None, warning=False):
    background, colour, icon = STAGE_STYLE.get(stage, ("#f1f2f6", "#40455a", "circle"))
    return {
        "stage": stage, "label": label or (Stage(stage).label if stage in Stage.values else stage),
        "background": background, "colour": colour, "icon": icon, "warning": warning,
    }


@register.filter
def stage_label(value):
    return Stage(value).label if value in Stage.values else value


# The colours of the stages in the charts of /lifecycle/ (lifecycle/static/lifecycle/overview.js).
STAGE_CHART_COLOUR = {
    Stage.INTRODUCTION: "#6366f1",
    Stage.GROWTH: "#16a34a",
    Stage.MATURITY: "#0284c7",
    Stage.DORMANT: "#d97706",
    Stage.CHURNED: "#dc2626",
}
# Whether more members in the stage is good news: it colours the change of the week.
GOOD_WHEN_UP = {
    Stage.INTRODUCTION: True, Stage.GROWTH: True, Stage.MATURITY: True, Stage.DORMANT: False, Stage.CHURNED: False,
}
DASHBOARD_DAYS = 30
COMPARE_DAYS = 7


def _change(now, before, good_when_up=True):
    """The change since ``before`` (None when there is nothing to compare with) and whether it is good news."""
    if before is None:
        return None
    delta = now - before
    return {"delta": delta, "good": delta == 0 or (delta > 0) == good_when_up}


@register.simple_tag(takes_context=True)
def lifecycle_dashboard(context):
    """The dashboard's lifecycle panel: members per stage now with the change since the snapshot of
    a week earlier, the churn warnings, and the win-backs and churned of the last 30 days, within
    the viewer's scope."""
    request = context["request"]
    tenant, staff = request.tenant, request.staff
    today = services.reporting_day(tenant, timezone.now())
    since = today - timedelta(days=DASHBOARD_DAYS - 1)
    days = queries.trend(tenant, since, today, staff)
    if not days:
        return {"scored": False}
    # Now: the stored stages (what /lifecycle/ counts, incremental runs included); a week ago: the snapshot.
    now = queries.summary(tenant, staff)
    last = {row["stage"]: row["count"] for row in now["stages"]}
    last["warning"] = now["warning_total"]
    last["day"] = services.local_day(tenant, now["as_of"]) if now["as_of"] else days[-1]["day"]
    week_ago = next((d for d in reversed(days) if d["day"] <= last["day"] - timedelta(days=COMPARE_DAYS)), None)
    total = now["total"]
    stages = [
        {
            "stage": stage.value, "label": stage.label, "count": last[stage], "colour": STAGE_CHART_COLOUR[stage],
            "pct": f"{100 * last[stage] / total:.2f}" if total else "0",
            "change": _change(last[stage], week_ago[stage] if week_ago else None, GOOD_WHEN_UP[stage]),
        }
        for stage in STAGE_ORDER
    ]
    flows = queries.transitions(tenant, since, today, staff)
    return {
        "scored": True,
        "day": last["day"],
        "compared_with": week_ago["day"] if week_ago else None,
        "total": total,
        "stages": stages,
        "warning": last["warning"],
        "warning_change": _change(last["warning"], week_ago["warning"] if week_ago else None, good_when_up=False),
        "win_backs": flows["win_backs"],
        "win_back_rate": flows["win_back_rate"],
        "churned": flows["churned"],
        "churn_rate": flows["churn_rate"],
        "days": DASHBOARD_DAYS,
        "compare_days": COMPARE_DAYS,
        "spark": {
            "days": [d["day"].isoformat() for d in days],
            "values": [d["warning"] for d in days],
            "colour": STAGE_CHART_COLOUR[Stage.DORMANT],
        },
    }
