"""Acquisition results and churn alerts, read-only and aggregated in the database.

Every figure is counted over LiveCodeJoin rows in one grouped query: a code may have a hundred
thousand joins, so nothing here loops over joins or members in Python. A join is judged by
what happened to its member after ``joined_at``:

- still a contact after 7 (30) days: the join is at least 7 (30) days old at ``as_of`` and the
  member did not delete the guide (a ``contact_deleted`` event, or a contact status that is no
  longer active with its change) before ``joined_at`` + 7 (30) days;
- converted: an order that is not refunded was placed within 30 days after ``joined_at``
  (and by ``as_of``);
- cost: a code's cost is spread evenly over all of its joins up to ``as_of``, so the cost of a
  period, a store or a guide is their share of it, whatever period is chosen.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import BooleanField, Count, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lifecycle.models import MemberLifecycle
from members.models import ContactStatus, Event, EventType, Member, Order
from scrm.models import Staff, Store
from tagging.models import MemberTag

from .models import ChurnAlert, LiveCode, LiveCodeDay, LiveCodeJoin

RETENTION_DAYS = (7, 30)
CONVERSION_DAYS = 30
MASS_LOSS_THRESHOLD = 5
LEADERBOARD_SIZE = 10
CENT = Decimal("0.01")

GROUPS = {
    "channel_type": gettext_lazy("Channel type"),
    "live_code": gettext_lazy("Live code"),
    "store": gettext_lazy("Store"),
    "guide": gettext_lazy("Guide"),
}
# The column of LiveCodeJoin and of LiveCodeDay each grouping reads; views have no guide.
_JOIN_KEY = {"channel_type": "live_code__channel_type", "live_code": "live_code_id", "store": "store_id", "guide": "guide_id"}
_VIEW_KEY = {"channel_type": "live_code__channel_type", "live_code": "live_code_id", "store": "live_code__store_id"}


# ---------------------------------------------------------------- scope

def visible_joins(staff):
    """Joins a staff member may see: a guide their own, a store manager their stores', others
    (and an API key, ``staff`` None) all."""
    joins = LiveCodeJoin.objects.all()
    if staff is None or staff.sees_all_members:
        return joins
    if staff.role == Staff.Role.GUIDE:
        return joins.filter(guide=staff)
    return joins.filter(store__in=staff.stores.all())


def visible_views(staff):
    """Landing views per code and day; a guide has none of their own (views are per code)."""
    days = LiveCodeDay.objects.all()
    if staff is None or staff.sees_all_members:
        return days
    if staff.role == Staff.Role.GUIDE:
        return days.none()
    return days.filter(live_code__store__in=staff.stores.all())


def period_bounds(tenant, start, end):
    """[start 00:00, the day after end 00:00) in the brand's zone."""
    zone = tenant.zone
    return datetime.combine(start, time(0), tzinfo=zone), datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)


def default_period(tenant, as_of, days=30):
    today = as_of.astimezone(tenant.zone).date()
    return today - timedelta(days=days - 1), today


# ---------------------------------------------------------------- per-join judgement

def _after_join(days):
    return ExpressionWrapper(OuterRef("joined_at") + Value(timedelta(days=days)), output_field=DateTimeField())


def _lost_within(days):
    """The member stopped being a contact within ``days`` after the join."""
    limit = ExpressionWrapper(F("joined_at") + Value(timedelta(days=days)), output_field=DateTimeField())
    deleted_event = Exists(Event.objects.filter(
        member_id=OuterRef("member_id"), type=EventType.CONTACT_DELETED,
        occurred_at__gte=OuterRef("joined_at"), occurred_at__lt=_after_join(days),
    ))
    status_changed = (
        ~Q(member__contact_status=ContactStatus.ACTIVE)
        & Q(member__contact_status_changed_at__gte=F("joined_at"))
        & Q(member__contact_status_changed_at__lt=limit)
    )
    # A status with no recorded change time is taken as lost from the start.
    no_time = ~Q(member__contact_status=ContactStatus.ACTIVE) & Q(member__contact_status_changed_at__isnull=True)
    return ExpressionWrapper(deleted_event | status_changed | no_time, output_field=BooleanField())


def judged(joins, as_of):
    """Each join annotated with the flags the figures count."""
    converted = Exists(Order.objects.filter(
        member_id=OuterRef("member_id"), placed_at__gte=OuterRef("joined_at"),
        placed_at__lt=_after_join(CONVERSION_DAYS), placed_at__lte=as_of,
    ).exclude(status=Order.Status.REFUNDED))
    joins = joins.filter(joined_at__lte=as_of)
    for days in RETENTION_DAYS:
        joins = joins.annotate(**{f"lost_{days}": _lost_within(days)})
    return joins.annotate(converted=converted)


def _counts(as_of):
    counts = {"joins": Count("pk"), "converted": Count("pk", filter=Q(converted=True))}
    for days in RETENTION_DAYS:
        old_enough = Q(joined_at__lte=as_of - timedelta(days=days))
        counts[f"eligible_{days}"] = Count("pk", filter=old_enough)
        counts[f"retained_{days}"] = Count("pk", filter=old_enough & Q(**{f"lost_{days}": False}))
    return counts


# ---------------------------------------------------------------- cost

def unit_costs(as_of):
    """{live code id: cost per join} of the codes that have a cost and joins by ``as_of``."""
    rows = LiveCodeJoin.objects.filter(joined_at__lte=as_of, live_code__cost__isnull=False).values(
        "live_code_id", "live_code__cost"
    ).annotate(n=Count("pk")).order_by()
    return {r["live_code_id"]: Decimal(r["live_code__cost"]) / r["n"] for r in rows}


def _money(value):
    return None if value is None else Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- results

@dataclass
class Params:
    group: str
    start: date
    end: date
    live_code_id: int | None = None


def _finish(row):
    """Rates and money of an accumulated row (the counts are already in it)."""
    for days in RETENTION_DAYS:
        eligible = row[f"eligible_{days}"]
        row[f"retention_{days}"] = round(row[f"retained_{days}"] / eligible, 4) if eligible else None
    row["conversion"] = round(row["converted"] / row["joins"], 4) if row["joins"] else None
    cost = row.pop("_cost")
    row["cost"] = _money(cost) if row["_costed_joins"] else None
    row["cost_per_join"] = _money(cost / row["_costed_joins"]) if row["_costed_joins"] else None
    row["cost_per_converted"] = _money(cost / row["_costed_converted"]) if row["_costed_converted"] else None
    row.pop("_costed_joins")
    row.pop("_costed_converted")
    return row


def _empty():
    row = {"views": 0, "joins": 0, "converted": 0, "_cost": Decimal("0"), "_costed_joins": 0, "_costed_converted": 0}
    for days in RETENTION_DAYS:
        row[f"eligible_{days}"] = row[f"retained_{days}"] = 0
    return row


def _add(row, counts, unit):
    for key in ("joins", "converted") + tuple(f"{k}_{d}" for d in RETENTION_DAYS for k in ("eligible", "retained")):
        row[key] += counts[key]
    if unit is not None:
        row["_cost"] += unit * counts["joins"]
        row["_costed_joins"] += counts["joins"]
        row["_costed_converted"] += counts["converted"]


def _labels(group, keys):
    keys = [k for k in keys if k is not None]
    if group == "channel_type":
        return {k: str(LiveCode.ChannelType(k).label) if k in LiveCode.ChannelType.values else k for k in keys}
    if group == "live_code":
        return dict(LiveCode.objects.filter(pk__in=keys).values_list("pk", "name"))
    if group == "store":
        return dict(Store.objects.filter(pk__in=keys).values_list("pk", "name"))
    return dict(Staff.objects.filter(pk__in=keys).values_list("pk", "name"))


def results(tenant, params, as_of, staff=None):
    """Per group and per day over [start, end]: views, joins, retention, conversion and cost.

    Returns {"rows": [{key, label, views, joins, …, "days": [{day, …}]}], "totals": {…},
    "days": [{day, views, joins, converted, …}] (all groups together, every day of the period)}.
    """
    since, until = period_bounds(tenant, params.start, params.end)
    key = _JOIN_KEY[params.group]
    joins = visible_joins(staff).filter(joined_at__gte=since, joined_at__lt=until)
    views = visible_views(staff).filter(day__gte=params.start, day__lte=params.end)
    if params.live_code_id is not None:
        joins = joins.filter(live_code_id=params.live_code_id)
        views = views.filter(live_code_id=params.live_code_id)
    units = unit_costs(as_of)
    grouped = judged(joins, as_of).annotate(
        g_key=F(key), g_day=TruncDate("joined_at", tzinfo=tenant.zone)
    ).values("g_key", "g_day", "live_code_id").annotate(**_counts(as_of)).order_by()

    rows, by_day, totals = {}, {}, _empty()
    for counts in grouped:
        unit = units.get(counts["live_code_id"])
        row = rows.setdefault(counts["g_key"], {"_days": {}, **_empty()})
        day = row["_days"].setdefault(counts["g_day"], _empty())
        for target in (row, day, by_day.setdefault(counts["g_day"], _empty()), totals):
            _add(target, counts, unit)
    if params.group in _VIEW_KEY:
        viewed = views.values(g_key=F(_VIEW_KEY[params.group]), g_day=F("day")).annotate(n=Sum("views")).order_by()
        for v in viewed:
            row = rows.setdefault(v["g_key"], {"_days": {}, **_empty()})
            row["views"] += v["n"]
            row["_days"].setdefault(v["g_day"], _empty())["views"] += v["n"]
    for v in views.values("day").annotate(n=Sum("views")).order_by():
        by_day.setdefault(v["day"], _empty())["views"] += v["n"]
        totals["views"] += v["n"]

    labels = _labels(params.group, rows)
    listed = []
    for k, row in rows.items():
        days = row.pop("_days")
        listed.append({
            "key": k, "label": labels.get(k) or _("None"),
            **_finish(row),
            "days": [{"day": d, **_finish(days[d])} for d in sorted(days)],
        })
    listed.sort(key=lambda r: (-r["joins"], -r["views"], str(r["label"])))
    every_day = []
    day = params.start
    while day <= params.end:
        every_day.append({"day": day, **_finish(by_day.get(day, _empty()))})
        day += timedelta(days=1)
    return {"rows": listed, "totals": _finish(totals), "days": every_day}


def leaderboard(tenant, start, end, as_of, staff=None, size=LEADERBOARD_SIZE):
    """The acquisition KPI of stores and of guides: most joins first, then the better 7-day
    retention, then the better conversion. Returns {"stores": [...], "guides": [...]}."""
    board = {}
    for group, name in (("store", "stores"), ("guide", "guides")):
        rows = [r for r in results(tenant, Params(group, start, end), as_of, staff)["rows"] if r["key"] is not None]
        rows.sort(key=lambda r: (-r["joins"], -(r["retention_7"] or 0), -(r["conversion"] or 0), str(r["label"])))
        for rank, row in enumerate(rows, start=1):
            row["rank"] = rank
            row.pop("days")
        board[name] = rows[:size]
    return board


# ---------------------------------------------------------------- churn alerts

def visible_deletions(staff):
    """Members who deleted their guide, as a staff member may see them: a guide their own, a
    store manager their stores' members and their stores' guides' members, others all."""
    members = Member.objects.filter(contact_status=ContactStatus.DELETED_BY_CUSTOMER, contact_status_changed_at__isnull=False)
    if staff is None or staff.sees_all_members:
        return members
    if staff.role == Staff.Role.GUIDE:
        return members.filter(owner_guide=staff)
    stores = staff.stores.all()
    guides = Staff.objects.filter(stores__in=stores).values("pk")
    return members.filter(Q(home_store__in=stores) | Q(owner_guide_id__in=guides))


def deletions(tenant, staff, start, end, store_id=None, guide_id=None):
    """Recent deletions, newest first, each with when the contact began and the last order."""
    since, until = period_bounds(tenant, start, end)
    members = visible_deletions(staff).filter(
        contact_status_changed_at__gte=since, contact_status_changed_at__lt=until
    )
    if store_id is not None:
        members = members.filter(home_store_id=store_id)
    if guide_id is not None:
        members = members.filter(owner_guide_id=guide_id)
    added = Event.objects.filter(
        member_id=OuterRef("pk"), type=EventType.CONTACT_ADDED, occurred_at__lte=OuterRef("contact_status_changed_at"),
    ).order_by("-occurred_at").values("occurred_at")[:1]
    joined = LiveCodeJoin.objects.filter(
        member_id=OuterRef("pk"), joined_at__lte=OuterRef("contact_status_changed_at"),
    ).order_by("-joined_at").values("joined_at")[:1]
    last_order = Order.objects.filter(member_id=OuterRef("pk")).exclude(status=Order.Status.REFUNDED).order_by("-placed_at")
    return members.annotate(
        contact_since=Coalesce(Subquery(added), Subquery(joined), F("joined_at")),
        last_order_at=Subquery(last_order.values("placed_at")[:1]),
        last_order_total=Subquery(last_order.values("total")[:1]),
    ).select_related("owner_guide", "home_store").order_by("-contact_status_changed_at", "-pk")


def days_as_contact(member):
    return max((member.contact_status_changed_at - member.contact_since).days, 0)


def stages_of(member_ids):
    """{member id: (stage, churn warning)} from the latest lifecycle run."""
    return {
        r[0]: (r[1], r[2])
        for r in MemberLifecycle.objects.filter(member_id__in=member_ids).values_list("member_id", "stage", "churn_warning")
    }


def tags_of(member_ids):
    """{member id: [(tag name, colour)]} for a page of members."""
    tags = {}
    rows = MemberTag.objects.filter(member_id__in=member_ids).order_by("tag__name").values_list(
        "member_id", "tag__name", "tag__colour"
    )
    for member_id, name, colour in rows:
        tags.setdefault(member_id, []).append((name, colour))
    return tags


def guides_over_threshold(tenant, staff, start, end, threshold=MASS_LOSS_THRESHOLD):
    """Guides who lost ``threshold`` or more contacts on one local day of [start, end], the
    latest day first: [{guide_id, guide_name, day, deletions}]."""
    since, until = period_bounds(tenant, start, end)
    rows = visible_deletions(staff).filter(
        contact_status_changed_at__gte=since, contact_status_changed_at__lt=until, owner_guide__isnull=False,
    ).annotate(day=TruncDate("contact_status_changed_at", tzinfo=tenant.zone)).values(
        "owner_guide_id", "owner_guide__name", "day"
    ).annotate(n=Count("pk")).filter(n__gte=threshold).order_by("-day", "-n", "owner_guide__name")
    return [
        {"guide_id": r["owner_guide_id"], "guide_name": r["owner_guide__name"], "day": r["day"], "deletions": r["n"]}
        for r in rows
    ]


def mass_losses(tenant, as_of, threshold=None):
    """The daily check's finding: (the brand's previous local day, the guides who lost the threshold
    or more contacts on it as [{guide_id, guide_name, day, deletions}])."""
    day = as_of.astimezone(tenant.zone).date() - timedelta(days=1)
    return day, guides_over_threshold(tenant, None, day, day, threshold or MASS_LOSS_THRESHOLD)


def visible_alerts(staff):
    """Mass-loss alerts a staff member may see, as the deletions: a guide their own, a store
    manager those of their stores and their stores' guides, others (and an API key) all."""
    alerts = ChurnAlert.objects.select_related("guide", "store", "acknowledged_by")
    if staff is None or staff.sees_all_members:
        return alerts
    if staff.role == Staff.Role.GUIDE:
        return alerts.filter(guide=staff)
    stores = staff.stores.all()
    guides = Staff.objects.filter(stores__in=stores).values("pk")
    return alerts.filter(Q(store__in=stores) | Q(guide_id__in=guides))

