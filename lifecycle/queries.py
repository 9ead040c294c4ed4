"""Read-only helpers shared by the API and the dashboard: explanations, counts, flows, funnel."""
from datetime import datetime, time, timedelta

from django.db.models import Count, F, Q, Sum
from django.utils.translation import gettext as _

from .models import (
    ACTIVE_STAGES, LAPSED_STAGES, RULE_FIELDS, STAGE_ORDER, DailyStageSnapshot, LifecycleRun, MemberLifecycle, Rule,
    Stage, StageChange, WarningRule,
)
from .services import last_scheduled_run, latest_run, rules_of_version

DAY = timedelta(days=1)
HISTORY_LIMIT = 50
CONVERSION_WINDOWS = (30, 60, 90)


def whole_days(since, as_of):
    """floor((as_of - since) / 1 day): the same count the scoring SQL uses."""
    if since is None:
        return None
    return (as_of - since) // DAY


# ---------------------------------------------------------------- visibility

def scope_rows(queryset, staff):
    """Rows a staff member may see, by the store and guide recorded on each row: guides their own
    members, store managers their stores', everyone else all. ``staff`` None is an API key."""
    if staff is None or staff.sees_all_members:
        return queryset
    if staff.role == staff.Role.GUIDE:
        return queryset.filter(guide_id=staff.pk)
    return queryset.filter(store_id__in=staff.stores.values("pk"))


def filter_rows(queryset, store_id=None, guide_id=None):
    if store_id:
        queryset = queryset.filter(store_id=store_id)
    if guide_id:
        queryset = queryset.filter(guide_id=guide_id)
    return queryset


# ---------------------------------------------------------------- one member

def explanation_basis(tenant, row):
    """The moment and the rule values a member's stored stage holds for: the later of the run that
    last rewrote the row and the last full or nightly run (which confirmed it unchanged)."""
    run = LifecycleRun.objects.unscoped().filter(pk=row.run_id).first()
    scheduled = last_scheduled_run(tenant)
    basis = run
    if scheduled is not None and (run is None or scheduled.as_of >= run.as_of):
        basis = scheduled
    as_of = max(row.as_of, basis.as_of) if basis else row.as_of
    return as_of, rules_of_version(tenant, basis.rules_version if basis else 0)


def _check(metric, value, operator, threshold, parameter=None):
    return {"metric": metric, "value": value, "operator": operator, "threshold": threshold, "parameter": parameter}


def explain(row, rules, as_of):
    """Why a member is in their stage and carries (or not) the warning: the rule that matched and
    the values it compared. ``rules`` is a dict of the rule parameters."""
    since_order = whole_days(row.last_order_at, as_of)
    since_join = whole_days(row.joined_at, as_of)
    r = rules
    checks = {
        Rule.CHURNED_LAPSED: [_check("days_since_last_order", since_order, ">=", r["churn_after_days"], "churn_after_days")],
        Rule.CHURNED_NEVER_BOUGHT: [
            _check("orders_total", row.orders_total, "=", 0),
            _check("days_since_joining", since_join, ">=", r["intro_churn_days"], "intro_churn_days"),
        ],
        Rule.CHURNED_DELETED_CONTACT: [
            _check("contact_status", row.contact_status, "=", "deleted_by_customer"),
            _check("last_order_at", _iso(row.last_order_at), "<=", _iso(row.contact_changed_at)),
        ],
        Rule.DORMANT: [_check("days_since_last_order", since_order, ">=", r["dormant_after_days"], "dormant_after_days")],
        Rule.MATURITY: [_check("orders_365", row.orders_365, ">=", r["mature_min_orders"], "mature_min_orders")],
        Rule.GROWTH: [
            _check("orders_total", row.orders_total, ">=", 1),
            _check("orders_365", row.orders_365, "<", r["mature_min_orders"], "mature_min_orders"),
        ],
        Rule.INTRODUCTION: [
            _check("orders_total", row.orders_total, "=", 0),
            _check("days_since_joining", since_join, "<", r["intro_churn_days"], "intro_churn_days"),
        ],
    }[row.rule]
    texts = {
        Rule.CHURNED_LAPSED: _("No order for %(days)s days (churned after %(limit)s).") % {
            "days": since_order, "limit": r["churn_after_days"]},
        Rule.CHURNED_NEVER_BOUGHT: _("Joined %(days)s days ago and never ordered (churned after %(limit)s).") % {
            "days": since_join, "limit": r["intro_churn_days"]},
        Rule.CHURNED_DELETED_CONTACT: _("Deleted the guide on WeCom and has not ordered since."),
        Rule.DORMANT: _("No order for %(days)s days (dormant after %(limit)s, churned after %(churn)s).") % {
            "days": since_order, "limit": r["dormant_after_days"], "churn": r["churn_after_days"]},
        Rule.MATURITY: _("%(orders)s orders in the last 365 days (maturity from %(limit)s).") % {
            "orders": row.orders_365, "limit": r["mature_min_orders"]},
        Rule.GROWTH: _("Has ordered; %(orders)s orders in the last 365 days (maturity from %(limit)s).") % {
            "orders": row.orders_365, "limit": r["mature_min_orders"]},
        Rule.INTRODUCTION: _("Joined %(days)s days ago and has not ordered yet (churned after %(limit)s).") % {
            "days": since_join, "limit": r["intro_churn_days"]},
    }
    warning = None
    if row.warning_rule == WarningRule.NO_RECENT_ORDER:
        warning = {
            "rule": row.warning_rule,
            "text": _("No order for %(days)s days (warning after %(limit)s).") % {"days": since_order, "limit": r["warning_days"]},
            "compared": [_check("days_since_last_order", since_order, ">=", r["warning_days"], "warning_days")],
        }
    elif row.warning_rule == WarningRule.AOV_DROP:
        keep = 100 - r["aov_drop_pct"]
        warning = {
            "rule": row.warning_rule,
            "text": _("%(orders)s order(s) in 90 days at ¥%(aov)s on average, down from ¥%(prev)s (warning at a drop of %(pct)s%%).") % {
                "orders": row.orders_90, "aov": row.aov_90, "prev": row.aov_prev, "pct": r["aov_drop_pct"]},
            "compared": [
                _check("orders_90", row.orders_90, "<=", 1),
                _check("aov_90", str(row.aov_90), "<=", str((row.aov_prev * keep / 100).quantize(row.aov_prev)), "aov_drop_pct"),
            ],
        }
    return {
        "rule": row.rule,
        "rule_label": Rule(row.rule).label,
        "text": texts[row.rule],
        "compared": checks,
        "warning": warning,
        "as_of": as_of,
        "rules": {field: rules[field] for field in RULE_FIELDS},
    }


def _iso(value):
    return value.isoformat() if value else None


def metrics_of(row, as_of):
    return {
        "first_order_at": row.first_order_at, "last_order_at": row.last_order_at,
        "orders_total": row.orders_total, "orders_90": row.orders_90, "orders_365": row.orders_365,
        "spend_total": row.spend_total, "spend_365": row.spend_365, "spend_90": row.spend_90,
        "aov_90": row.aov_90, "aov_prev": row.aov_prev,
        "days_since_last_order": whole_days(row.last_order_at, as_of),
        "days_since_joining": whole_days(row.joined_at, as_of),
        "favourite_category": row.favourite_category, "last_interaction_at": row.last_interaction_at,
        "contact_status": row.contact_status,
    }


def member_stage(tenant, member):
    """Everything the API and the member page show about one member's stage, or None if unscored."""
    row = MemberLifecycle.objects.filter(member=member).first()
    if row is None:
        return None
    as_of, rules = explanation_basis(tenant, row)
    history = StageChange.objects.filter(member=member).order_by("-at", "-id")[:HISTORY_LIMIT]
    return {
        "member_id": member.pk,
        "stage": row.stage,
        "stage_label": Stage(row.stage).label,
        "churn_warning": row.churn_warning,
        "since": row.stage_since,
        "warning_since": row.warning_since,
        "as_of": as_of,
        "explanation": explain(row, rules, as_of),
        "metrics": metrics_of(row, as_of),
        "history": list(history),
    }


# ---------------------------------------------------------------- the brand

def summary(tenant, staff=None, store_id=None, guide_id=None):
    rows = filter_rows(scope_rows(MemberLifecycle.objects.all(), staff), store_id, guide_id)
    counts = {stage: {"count": 0, "warning": 0} for stage in STAGE_ORDER}
    for stage, warning, n in rows.values_list("stage", "churn_warning").annotate(n=Count("pk")).order_by():
        counts[stage]["count"] += n
        if warning:
            counts[stage]["warning"] += n
    last = latest_run(tenant)
    total = sum(c["count"] for c in counts.values())
    return {
        "as_of": last.as_of if last else None,
        "total": total,
        "warning_total": sum(c["warning"] for c in counts.values()),
        "stages": [
            {"stage": stage.value, "label": stage.label, "count": counts[stage]["count"], "warning": counts[stage]["warning"],
             "share": round(counts[stage]["count"] / total, 4) if total else 0}
            for stage in STAGE_ORDER
        ],
        "last_run": last,
    }


def period_bounds(tenant, since, until):
    """[start, end) moments of local days ``since`` .. ``until`` (inclusive) in the brand's zone."""
    start = datetime.combine(since, time.min, tzinfo=tenant.zone)
    end = datetime.combine(until + DAY, time.min, tzinfo=tenant.zone)
    return start, end


def _snapshot_counts(tenant, staff, day, store_id, guide_id):
    """Members per stage on the last snapshot day at or before ``day`` (None if there is none)."""
    snaps = filter_rows(scope_rows(DailyStageSnapshot.objects.all(), staff), store_id, guide_id)
    first = snaps.filter(day__lte=day).order_by("-day").values_list("day", flat=True).first()
    if first is None:
        return None
    return dict(snaps.filter(day=first).values_list("stage").annotate(n=Sum("count")).values_list("stage", "n"))


def transitions(tenant, since, until, staff=None, store_id=None, guide_id=None):
    """Flows between stages in a period: the from x to matrix, entries of new members, win-backs
    (dormant or churned back to growth or maturity) and the win-back and churn rates."""
    start, end = period_bounds(tenant, since, until)
    changes = filter_rows(scope_rows(StageChange.objects.all(), staff), store_id, guide_id).filter(at__gte=start, at__lt=end)
    moves = (
        changes.exclude(from_stage=F("to_stage")).values_list("from_stage", "to_stage")
        .annotate(n=Count("pk")).order_by()
    )
    matrix = {a.value: {b.value: 0 for b in STAGE_ORDER} for a in STAGE_ORDER}
    entered = {stage.value: 0 for stage in STAGE_ORDER}
    for from_stage, to_stage, n in moves:
        if from_stage:
            matrix[from_stage][to_stage] += n
        else:
            entered[to_stage] += n
    warnings = changes.aggregate(
        raised=Count("pk", filter=Q(from_warning=False, to_warning=True)),
        cleared=Count("pk", filter=Q(from_warning=True, to_warning=False)),
    )
    win_backs = sum(matrix[a][b] for a in LAPSED_STAGES for b in ACTIVE_STAGES)
    churned = sum(matrix[a][Stage.CHURNED] for a in STAGE_ORDER if a != Stage.CHURNED)
    at_start = _snapshot_counts(tenant, staff, since - DAY, store_id, guide_id)
    if at_start is None:
        at_start = _snapshot_counts(tenant, staff, since, store_id, guide_id) or {}
    lapsed_at_start = sum(at_start.get(s, 0) for s in LAPSED_STAGES)
    not_churned_at_start = sum(n for s, n in at_start.items() if s != Stage.CHURNED)
    return {
        "since": since,
        "until": until,
        "matrix": matrix,
        "flows": [
            {"from": a, "to": b, "count": n}
            for a, row in matrix.items() for b, n in row.items() if n
        ],
        "entered": entered,
        "changes": sum(sum(row.values()) for row in matrix.values()),
        "win_backs": win_backs,
        "win_back_rate": round(win_backs / lapsed_at_start, 4) if lapsed_at_start else None,
        "churned": churned,
        "churn_rate": round(churned / not_churned_at_start, 4) if not_churned_at_start else None,
        "warnings_raised": warnings["raised"],
        "warnings_cleared": warnings["cleared"],
    }


def trend(tenant, since, until, staff=None, store_id=None, guide_id=None):
    """Members per stage (and with the warning) per day, from the daily snapshots."""
    snaps = filter_rows(scope_rows(DailyStageSnapshot.objects.all(), staff), store_id, guide_id)
    rows = (
        snaps.filter(day__gte=since, day__lte=until).values_list("day", "stage", "churn_warning")
        .annotate(n=Sum("count")).order_by("day")
    )
    days = {}
    for day, stage, warning, n in rows:
        entry = days.setdefault(day, {**{s.value: 0 for s in STAGE_ORDER}, "warning": 0})
        entry[stage] += n
        if warning:
            entry["warning"] += n
    return [{"day": day, **counts} for day, counts in sorted(days.items())]


def funnel(tenant, since, until, staff=None, store_id=None, guide_id=None, as_of=None):
    """Introduction -> growth -> maturity for members who joined in the period, and first-purchase
    conversion within 30/60/90 days of joining (among members who have been members that long)."""
    start, end = period_bounds(tenant, since, until)
    rows = filter_rows(scope_rows(MemberLifecycle.objects.all(), staff), store_id, guide_id)
    cohort = rows.filter(joined_at__gte=start, joined_at__lt=end)
    steps = cohort.aggregate(
        joined=Count("pk"),
        bought=Count("pk", filter=Q(first_order_at__isnull=False)),
        matured=Count("pk", filter=Q(matured_at__isnull=False)),
    )
    last = latest_run(tenant)
    as_of = as_of or (last.as_of if last else end)
    conversion = []
    recent = rows.filter(joined_at__gte=end - 365 * DAY, joined_at__lt=end)
    for days in CONVERSION_WINDOWS:
        counted = recent.filter(joined_at__lte=as_of - days * DAY).aggregate(
            members=Count("pk"), bought=Count("pk", filter=Q(days_to_first_order__lte=days)),
        )
        conversion.append({
            "days": days, "members": counted["members"], "bought": counted["bought"],
            "rate": round(counted["bought"] / counted["members"], 4) if counted["members"] else None,
        })
    joined = steps["joined"]
    return {
        "steps": [
            {"stage": Stage.INTRODUCTION.value, "label": Stage.INTRODUCTION.label, "count": joined, "rate": 1 if joined else None},
            {"stage": Stage.GROWTH.value, "label": Stage.GROWTH.label, "count": steps["bought"],
             "rate": round(steps["bought"] / joined, 4) if joined else None},
            {"stage": Stage.MATURITY.value, "label": Stage.MATURITY.label, "count": steps["matured"],
             "rate": round(steps["matured"] / joined, 4) if joined else None},
        ],
        "conversion": conversion,
    }
