"""Guide and store performance with commission (业绩分佣), and a campaign's results day by day.

Read-only. Every figure is aggregated in the database with a fixed number of queries, whatever the
number of guides, stores or members: a brand has a million members and thousands of guides.

Attribution: an order placed within the attribution window after a touch (a guide task or a message
of a campaign step) is credited to the last such touch before it, that is to its campaign step, and
to the guide and store of that enrolment (the member's guide and home store when enrolled, moved
along when a leaving guide's members are handed over). Sales are net of refunds; fully refunded
orders count for nothing.
"""
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Case, Count, DateTimeField, DecimalField, Exists, ExpressionWrapper, F, Min, OuterRef, Q, Subquery, Sum, Value, When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lifecycle.models import ACTIVE_STAGES, MemberLifecycle
from members.models import Event, EventType, Member, Order
from scrm.models import Staff, Store

from .models import Enrolment, GuideTask, StepRun
from .services import CONTROL, outreach_settings

MONEY = DecimalField(max_digits=14, decimal_places=2)
CENT = Decimal("0.01")
MAX_PERIOD_DAYS = 366

# Two guides are "similar" when they share a store, their member counts are within this share of
# each other and the share of their members in the buying stages (growth, maturity) differs by at
# most this many points; their sales are "very different" when one sold less than half the other.
SIMILAR_COUNT_SHARE = Decimal("0.8")
SIMILAR_MIX_POINTS = 10
SALES_GAP_RATIO = Decimal("0.5")
MIN_MEMBERS_TO_COMPARE = 10
# Below this many attributed orders a twofold difference in sales is chance, not a pattern.
MIN_ORDERS_TO_COMPARE = 5

SIMILAR_HELP = gettext_lazy(
    "A guide is flagged when another guide of the same store has a similar book of members (member counts "
    "within 20%% of each other, and the share of members in the growth and maturity stages within %(points)s "
    "points) but sold more than twice as much in the period. Only guides with at least %(min)s members are "
    "compared, and only against a guide with at least %(orders)s attributed orders."
)

GUIDE_ORDERINGS = ("name", "members", "tasks_assigned", "tasks_done", "reply_rate", "conversion_rate",
                   "orders", "sales", "commission")
STORE_ORDERINGS = ("name", "guides", "members", "tasks_assigned", "tasks_done", "reply_rate", "conversion_rate",
                   "orders", "sales", "commission")


class NotAllowed(Exception):
    """The viewer may not see this report."""


def period_bounds(tenant, since, until):
    """[start, end) moments of local days ``since`` .. ``until`` (inclusive) in the brand's zone."""
    start = datetime.combine(since, time.min, tzinfo=tenant.zone)
    return start, datetime.combine(until + timedelta(days=1), time.min, tzinfo=tenant.zone)


def default_period(tenant, as_of, days=30):
    today = as_of.astimezone(tenant.zone).date()
    return today - timedelta(days=days - 1), today


# ---------------------------------------------------------------- who may see what

def visible_guides(staff, store_id=None):
    """Guides the viewer may see: operators and API keys (``staff`` None) all, a store manager the
    guides of their stores, a guide themselves."""
    guides = Staff.objects.filter(role=Staff.Role.GUIDE)
    if staff is not None and staff.role == Staff.Role.GUIDE:
        guides = guides.filter(pk=staff.pk)
    elif staff is not None and not staff.sees_all_members:
        guides = guides.filter(pk__in=Staff.stores.through.objects.filter(store__in=staff.stores.all()).values("staff_id"))
    if store_id:
        guides = guides.filter(pk__in=Staff.stores.through.objects.filter(store_id=store_id).values("staff_id"))
    return guides


def visible_stores(staff):
    if staff is None or staff.sees_all_members:
        return Store.objects.all()
    if staff.role == Staff.Role.GUIDE:
        raise NotAllowed(_("Guides see their own figures only."))
    return Store.objects.filter(pk__in=staff.stores.values("pk"))


# ---------------------------------------------------------------- the shared pieces

def _last_touch(window):
    """The touches that may claim an order: at or before it, within the window."""
    return StepRun.objects.filter(
        member_id=OuterRef("member_id"), touched=True, run_at__lte=OuterRef("placed_at"),
        run_at__gt=ExpressionWrapper(OuterRef("placed_at") - Value(window), output_field=DateTimeField()),
    ).order_by("-run_at", "-pk")


def attributed_orders(start, end, attribution_days, credit_to):
    """Orders placed in [start, end) after a touch within the window, each with ``credited``: the
    ``credit_to`` field of the last touch's enrolment (``guide_id``, ``store_id``) or its step."""
    field = "step_id" if credit_to == "step_id" else f"enrolment__{credit_to}"
    touch = _last_touch(timedelta(days=attribution_days))
    return (
        Order.objects.filter(placed_at__gte=start, placed_at__lt=end, member__isnull=False)
        .exclude(status=Order.Status.REFUNDED)
        .annotate(credited=Subquery(touch.values(field)[:1]))
        .filter(credited__isnull=False)
    )


def _attributed_by(start, end, attribution_days, credit_to, among=None):
    """{credited id: (orders, net sales)}.

    Only members touched between the window before the period and its end can have an order
    credited, so the orders are narrowed to theirs first (to those touched for ``among``, ids of
    guides or stores, if given): the last touch is then looked up for those orders only, not for
    every order of the brand in the period."""
    orders = attributed_orders(start, end, attribution_days, credit_to)
    touched = StepRun.objects.filter(touched=True, run_at__gte=start - timedelta(days=attribution_days), run_at__lt=end)
    if among is not None:
        touched = touched.filter(**{f"enrolment__{credit_to}__in": among})
    orders = orders.filter(member_id__in=touched.values("member_id"))
    rows = (
        orders.order_by().values("credited")
        .annotate(n=Count("pk"), net=Sum(F("total") - F("refunded_amount"), output_field=MONEY))
    )
    return {r["credited"]: (r["n"], r["net"] or Decimal("0")) for r in rows}


def _task_figures(tasks, start, end, attribution_days, group_by):
    """Tasks created in the period: assigned, done (closed with an outcome), replied (the member
    answered or bought) and converted (an order within the window after the task was given)."""
    window = timedelta(days=attribution_days)
    bought_after = Order.objects.filter(
        member_id=OuterRef("member_id"), placed_at__gte=OuterRef("created_at"),
        placed_at__lt=ExpressionWrapper(OuterRef("created_at") + Value(window), output_field=DateTimeField()),
    ).exclude(status=Order.Status.REFUNDED)
    rows = (
        tasks.filter(created_at__gte=start, created_at__lt=end).annotate(converted=Exists(bought_after))
        .order_by().values(group_by)
        .annotate(
            assigned=Count("pk"),
            done=Count("pk", filter=~Q(status=GuideTask.Status.OPEN)),
            replied=Count("pk", filter=Q(status__in=(GuideTask.Status.REPLIED, GuideTask.Status.BOUGHT))),
            n_converted=Count("pk", filter=Q(converted=True)),
        )
    )
    return {r[group_by]: r for r in rows}


def _figures(row, tasks, attributed, rate):
    assigned = tasks.get("assigned", 0)
    orders, sales = attributed
    sales = Decimal(sales).quantize(CENT)  # SQLite sums decimals without their places
    row.update({
        "tasks_assigned": assigned,
        "tasks_done": tasks.get("done", 0),
        "replied": tasks.get("replied", 0),
        "converted": tasks.get("n_converted", 0),
        "reply_rate": round(tasks.get("replied", 0) / assigned, 4) if assigned else 0,
        "conversion_rate": round(tasks.get("n_converted", 0) / assigned, 4) if assigned else 0,
        "orders": orders,
        "sales": sales,
        "commission": commission(sales, rate),
    })
    return row


def commission(sales, rate):
    return (Decimal(sales) * Decimal(rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def _sorted(rows, ordering, allowed):
    key = (ordering or "-sales").lstrip("-")
    if key not in allowed:
        key = "sales"
    reverse = (ordering or "-sales").startswith("-")
    # Ties keep a stable order by name, so a page never shuffles between requests.
    rows.sort(key=lambda r: str(r["name"]))
    rows.sort(key=lambda r: r[key] if key != "name" else str(r[key]), reverse=reverse)
    return rows


# ---------------------------------------------------------------- guides

def guide_performance(tenant, since, until, staff=None, store_id=None, ordering=None):
    """One row per guide the viewer may see, and the settings the figures used."""
    settings = outreach_settings(tenant)
    days, rate = settings.attribution_days, settings.commission_rate
    start, end = period_bounds(tenant, since, until)
    guides = visible_guides(staff, store_id)
    rows = {
        g["pk"]: {"id": g["pk"], "name": g["name"], "active": g["active"], "stores": [], "members": 0,
                  "active_members": 0, "sales_gap": None}
        for g in guides.order_by("name").values("pk", "name", "active")
    }
    for link in Staff.stores.through.objects.filter(staff_id__in=guides.values("pk")).order_by("store__code").values(
        "staff_id", "store_id", "store__name"
    ):
        rows[link["staff_id"]]["stores"].append({"id": link["store_id"], "name": link["store__name"]})
    # Everyone's figures are one pass over the table; filtering by a subquery of guides would not help then.
    scoped = staff is not None and not staff.sees_all_members or bool(store_id)
    members_, lifecycles, tasks = Member.objects.all(), MemberLifecycle.objects.all(), GuideTask.objects.all()
    if scoped:
        members_ = members_.filter(owner_guide__in=guides.values("pk"))
        lifecycles = lifecycles.filter(guide__in=guides.values("pk"))
        tasks = tasks.filter(guide__in=guides.values("pk"))
    for pk, n in members_.order_by().values("owner_guide_id").annotate(n=Count("pk")).values_list("owner_guide_id", "n"):
        if pk in rows:
            rows[pk]["members"] = n
    # The stage mix as of the last lifecycle run, which copies each member's guide beside the stage.
    buying = lifecycles.filter(stage__in=ACTIVE_STAGES).order_by().values("guide_id").annotate(n=Count("pk"))
    for pk, n in buying.values_list("guide_id", "n"):
        if pk in rows:
            rows[pk]["active_members"] = n
    tasks = _task_figures(tasks, start, end, days, "guide_id")
    attributed = _attributed_by(start, end, days, "guide_id", guides.values("pk") if scoped else None)
    for pk, row in rows.items():
        _figures(row, tasks.get(pk, {}), attributed.get(pk, (0, Decimal("0"))), rate)
    _flag_sales_gaps(list(rows.values()))
    return {
        "since": since, "until": until, "attribution_days": days, "commission_rate": rate,
        "rows": _sorted(list(rows.values()), ordering, GUIDE_ORDERINGS),
    }


def _buying_share(row):
    return Decimal(100 * row["active_members"]) / row["members"]


def similar(a, b):
    """Similar books of members: see SIMILAR_HELP."""
    if min(a["members"], b["members"]) < MIN_MEMBERS_TO_COMPARE:
        return False
    if Decimal(min(a["members"], b["members"])) < SIMILAR_COUNT_SHARE * max(a["members"], b["members"]):
        return False
    return abs(_buying_share(a) - _buying_share(b)) <= SIMILAR_MIX_POINTS


def _flag_sales_gaps(rows):
    """Mark each guide who sold less than half of a similar guide of a shared store, naming the best such peer."""
    by_store = {}
    for row in rows:
        for store in row["stores"]:
            by_store.setdefault(store["id"], []).append(row)
    for peers in by_store.values():
        for low in peers:
            for high in peers:
                if high is low or high["orders"] < MIN_ORDERS_TO_COMPARE or low["sales"] >= SALES_GAP_RATIO * high["sales"]:
                    continue
                if not similar(low, high):
                    continue
                if low["sales_gap"] is None or high["sales"] > low["sales_gap"]["peer_sales"]:
                    low["sales_gap"] = {"peer_id": high["id"], "peer_name": high["name"], "peer_sales": high["sales"]}


# ---------------------------------------------------------------- stores

def store_performance(tenant, since, until, staff=None, store_id=None, ordering=None):
    """One row per store the viewer may see (owners, operators, store managers)."""
    settings = outreach_settings(tenant)
    days, rate = settings.attribution_days, settings.commission_rate
    start, end = period_bounds(tenant, since, until)
    stores = visible_stores(staff)
    if store_id:
        stores = stores.filter(pk=store_id)
    rows = {
        s["pk"]: {"id": s["pk"], "code": s["code"], "name": s["name"], "guides": 0, "members": 0}
        for s in stores.order_by("code").values("pk", "code", "name")
    }
    store_ids = stores.values("pk")
    for g in (Staff.stores.through.objects.filter(store_id__in=store_ids, staff__role=Staff.Role.GUIDE)
              .order_by().values("store_id").annotate(n=Count("staff_id"))):
        rows[g["store_id"]]["guides"] = g["n"]
    for m in Member.objects.filter(home_store_id__in=store_ids).order_by().values("home_store_id").annotate(n=Count("pk")):
        rows[m["home_store_id"]]["members"] = m["n"]
    scoped = staff is not None and not staff.sees_all_members or bool(store_id)
    tasks = _task_figures(GuideTask.objects.filter(store_id__in=store_ids), start, end, days, "store_id")
    attributed = _attributed_by(start, end, days, "store_id", store_ids if scoped else None)
    for pk, row in rows.items():
        _figures(row, tasks.get(pk, {}), attributed.get(pk, (0, Decimal("0"))), rate)
    return {
        "since": since, "until": until, "attribution_days": days, "commission_rate": rate,
        "rows": _sorted(list(rows.values()), ordering, STORE_ORDERINGS),
    }


def totals(rows, rate):
    assigned = sum(r["tasks_assigned"] for r in rows)
    sales = sum((r["sales"] for r in rows), Decimal("0"))
    return {
        "members": sum(r["members"] for r in rows), "tasks_assigned": assigned,
        "tasks_done": sum(r["tasks_done"] for r in rows),
        "reply_rate": round(sum(r["replied"] for r in rows) / assigned, 4) if assigned else 0,
        "conversion_rate": round(sum(r["converted"] for r in rows) / assigned, 4) if assigned else 0,
        "orders": sum(r["orders"] for r in rows), "sales": sales,
        "commission": sum((r["commission"] for r in rows), Decimal("0")),
    }


# ---------------------------------------------------------------- a campaign, day by day

OVER_TIME_DAYS = 90
METRICS = ("enrolled", "touched", "replied", "converted")


def campaign_over_time(campaign, tenant, as_of, days=OVER_TIME_DAYS):
    """Per variant and local day (the last ``days`` days up to the latest activity): members enrolled,
    first touched, first replied and converted (the first order in the attribution window) that day."""
    settings = outreach_settings(tenant)
    window = timedelta(days=settings.attribution_days)
    zone = tenant.zone
    enrolments = Enrolment.objects.filter(campaign=campaign)
    start = Coalesce(OuterRef("first_touch_at"), OuterRef("enrolled_at"))
    first_order = Order.objects.filter(
        member_id=OuterRef("member_id"), placed_at__gte=start,
        placed_at__lt=ExpressionWrapper(start + Value(window), output_field=DateTimeField()),
    ).exclude(status=Order.Status.REFUNDED).order_by("placed_at")
    task_reply = GuideTask.objects.filter(
        enrolment_id=OuterRef("pk"), status__in=(GuideTask.Status.REPLIED, GuideTask.Status.BOUGHT), done_at__isnull=False,
    ).order_by("done_at")
    event_reply = Event.objects.filter(
        member_id=OuterRef("member_id"), type=EventType.MESSAGE_REPLIED, occurred_at__gte=OuterRef("first_touch_at"),
    ).order_by("occurred_at")
    moments = {
        "enrolled": enrolments.annotate(at=F("enrolled_at")),
        "touched": enrolments.annotate(at=F("first_touch_at")),
        "replied": enrolments.annotate(
            by_task=Subquery(task_reply.values("done_at")[:1]), by_event=Subquery(event_reply.values("occurred_at")[:1]),
        ).annotate(at=Case(
            When(by_task__isnull=True, then=F("by_event")), When(by_event__isnull=True, then=F("by_task")),
            When(by_task__lte=F("by_event"), then=F("by_task")), default=F("by_event"), output_field=DateTimeField(),
        )),
        "converted": enrolments.annotate(at=Subquery(first_order.values("placed_at")[:1])),
    }
    counts = {}
    for metric, rows in moments.items():
        for r in (rows.filter(at__isnull=False).order_by().values("variant", day=TruncDate("at", tzinfo=zone))
                  .annotate(n=Count("pk"))):
            counts[(metric, r["variant"], r["day"])] = r["n"]
    today = as_of.astimezone(zone).date()
    seen = [day for (_m, _v, day) in counts]
    last = min(max(seen), today) if seen else today
    first = max(min(seen), last - timedelta(days=days - 1)) if seen else last
    day_list = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    labels = {v["key"]: v.get("label") or v["key"] for v in campaign.variants}
    keys = sorted({v for (_m, v, _d) in counts}, key=lambda k: (k == CONTROL, k))
    return {
        "days": [d.isoformat() for d in day_list],
        "variants": [
            {"key": key, "label": str(_("Control") if key == CONTROL else labels.get(key, key or _("Everyone"))),
             **{metric: [counts.get((metric, key, d), 0) for d in day_list] for metric in METRICS}}
            for key in keys
        ],
    }


def step_credit(campaign, tenant, as_of):
    """Per step of ``campaign``: the orders (and their net sales) whose last touch in the window was that step."""
    days = outreach_settings(tenant).attribution_days
    first = Enrolment.objects.filter(campaign=campaign).aggregate(first=Min("enrolled_at"))["first"]
    steps = list(campaign.steps.all())
    credit = {}
    if first is not None:
        touched = StepRun.objects.filter(campaign=campaign, touched=True).values("member_id")
        orders = attributed_orders(first, as_of + timedelta(seconds=1), days, "step_id").filter(member_id__in=touched)
        rows = orders.filter(credited__in=[s.pk for s in steps]).order_by().values("credited").annotate(
            n=Count("pk"), net=Sum(F("total") - F("refunded_amount"), output_field=MONEY),
        )
        credit = {r["credited"]: (r["n"], Decimal(r["net"] or 0).quantize(CENT)) for r in rows}
    return [
        {"step_id": s.pk, "delay_days": s.delay_days, "action": s.action, "variant": s.variant,
         "orders": credit.get(s.pk, (0, Decimal("0.00")))[0], "sales": credit.get(s.pk, (0, Decimal("0.00")))[1]}
        for s in steps
    ]
