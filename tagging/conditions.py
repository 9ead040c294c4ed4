"""The segment grammar: a condition tree over members, validated with path-named errors and
compiled to one SQL query (a ``Q`` of lookups, ``Exists`` and ``IN (subquery)``).

A tree is a group ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": node}`` or a condition
``{"field": "...", "op": "...", "value": ...}`` (some fields take parameters, e.g. ``days``).
Semantics, which the plain evaluator in the tests mirrors: a comparison with a missing value is
false, ``ne`` and ``not_in`` are the exact negation of ``eq`` and ``in``, and ``not`` negates.
Counts and sums of a member with no orders are 0; averages, dates and shares are missing.
"""
import re
from dataclasses import dataclass, field as dc_field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import (
    Case, Count, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum, Value, When,
)
from django.utils.translation import gettext as _, gettext_lazy

from members.models import ContactStatus, Event, EventType, Gender, Order, OrderLine
from scrm.models import Staff, Store
from scrm.tenancy import require_tenant

MAX_DEPTH = 6
MAX_NODES = 100
MAX_CHILDREN = 30
MAX_LIST = 500
MAX_STRING = 100
MAX_DAYS = 3660
MAX_NUMBER = Decimal("1000000000")

COMPARE = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
NUMBER_OPS = COMPARE + ("is_null",)
DATE_OPS = COMPARE + ("within_last_days", "this_month", "is_null")
CHOICE_OPS = ("eq", "ne", "in", "not_in")
TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "is_null")
REF_OPS = ("eq", "ne", "in", "not_in", "is_null")
TAG_OPS = ("has_any", "has_all", "has_none")
NO_VALUE_OPS = ("this_month",)


class ConditionError(Exception):
    """Invalid tree; ``errors`` maps the path of each bad node to its messages."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


@dataclass
class Context:
    """What a compilation needs beyond the tree: the clock and zone of the tenant."""

    as_of: datetime
    zone: object
    segments_seen: tuple = ()

    @property
    def today(self):
        return self.as_of.astimezone(self.zone).date()

    def midnight(self, day):
        return datetime.combine(day, time.min, tzinfo=self.zone)


# ---------------------------------------------------------------- fields

@dataclass
class FieldSpec:
    key: str
    label: object
    type: str  # number, integer, decimal, percent, date, datetime, choice, text, ref, tags, bool, coupon, segment
    ops: tuple
    category: object
    choices: object = None  # callable -> [(value, label)]
    params: dict = dc_field(default_factory=dict)  # name -> kind
    compile: object = None  # (cond, ctx) -> Q
    nullable: bool = False


FIELDS = {}

MEMBER = gettext_lazy("Member")
METRICS = gettext_lazy("Purchases")
LIFECYCLE = gettext_lazy("Lifecycle")
TAGS = gettext_lazy("Tags")
ACTIVITY = gettext_lazy("Activity")
COUPONS = gettext_lazy("Coupons")


def register(spec):
    FIELDS[spec.key] = spec
    return spec


def _lookup(path, cond, ctx):
    """eq / ne / in / ... on a plain column or a path through a one-to-one relation."""
    op, value = cond["op"], cond.get("value")
    if op == "is_null":
        q = Q(**{f"{path}__isnull": True})
        if cond["spec"].type == "text":
            q |= Q(**{path: ""})
        return q if value else ~q
    if op in ("eq", "ne"):
        q = Q(**{path: value})
        return q if op == "eq" else ~q
    if op in ("in", "not_in"):
        q = Q(**{f"{path}__in": value})
        return q if op == "in" else ~q
    if op == "contains":
        return Q(**{f"{path}__icontains": value})
    if op == "between":
        return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
    return Q(**{f"{path}__{op}": value})


def column(path):
    return lambda cond, ctx: _lookup(path, cond, ctx)


def _coalesced_zero(path):
    """A count or sum: a member without a metrics row has 0, so a condition 0 satisfies also
    takes those members in."""

    def compile_(cond, ctx):
        q = _lookup(path, cond, ctx)
        missing = Q(**{f"{path}__isnull": True})
        return (q | missing) if _number_holds(cond, Decimal(0)) else (q & ~missing)

    return compile_


def _number_holds(cond, number):
    op, value = cond["op"], cond.get("value")
    if op == "between":
        return value[0] <= number <= value[1]
    return {
        "eq": number == value, "ne": number != value, "gt": number > value, "gte": number >= value,
        "lt": number < value, "lte": number <= value,
    }.get(op, False)


def _datetime_bounds(path, cond, ctx):
    """Dates compare by the tenant's calendar day; relative dates count back from ``as_of``."""
    op, value = cond["op"], cond.get("value")
    m = ctx.midnight
    if op == "is_null":
        q = Q(**{f"{path}__isnull": True})
        return q if value else ~q
    if op == "within_last_days":
        return Q(**{f"{path}__gte": ctx.as_of - timedelta(days=value), f"{path}__lte": ctx.as_of})
    if op == "this_month":
        first = ctx.today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Q(**{f"{path}__gte": m(first), f"{path}__lt": m(following)})
    if op == "between":
        return Q(**{f"{path}__gte": m(value[0]), f"{path}__lt": m(value[1] + timedelta(days=1))})
    day_start, day_end = m(value), m(value + timedelta(days=1))
    if op in ("eq", "ne"):
        q = Q(**{f"{path}__gte": day_start, f"{path}__lt": day_end})
        return q if op == "eq" else ~q
    return {
        "gt": Q(**{f"{path}__gte": day_end}), "gte": Q(**{f"{path}__gte": day_start}),
        "lt": Q(**{f"{path}__lt": day_start}), "lte": Q(**{f"{path}__lt": day_end}),
    }[op]


def datetime_column(path):
    return lambda cond, ctx: _datetime_bounds(path, cond, ctx)


def _date_bounds(path, cond, ctx):
    op, value = cond["op"], cond.get("value")
    if op == "within_last_days":
        return Q(**{f"{path}__gte": ctx.today - timedelta(days=value), f"{path}__lte": ctx.today})
    if op == "this_month":
        first = ctx.today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Q(**{f"{path}__gte": first, f"{path}__lt": following})
    return _lookup(path, cond, ctx)


def _years_before(day, years):
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _age(cond, ctx):
    """Age in whole years on ``as_of``'s day, as birthday bounds, so the birthday index serves it."""
    op, value = cond["op"], cond.get("value")
    if op == "is_null":
        q = Q(birthday__isnull=True)
        return q if value else ~q

    def at_least(years):
        return Q(birthday__lte=_years_before(ctx.today, years))

    def at_most(years):
        return Q(birthday__gt=_years_before(ctx.today, years + 1))

    if op == "between":
        return at_least(value[0]) & at_most(value[1])
    if op in ("eq", "ne"):
        q = at_least(value) & at_most(value)
        return q if op == "eq" else ~q
    if op == "gt":
        return at_least(value + 1)
    if op == "gte":
        return at_least(value)
    if op == "lt":
        return at_most(value - 1) if value > 0 else Q(pk__lt=0)
    return at_most(value)


def _birthday_month(cond, ctx):
    if cond["op"] == "this_month":
        return Q(birthday__month=ctx.today.month)
    return _lookup("birthday__month", cond, ctx)


def _attribute(cond, ctx):
    key = cond["key"]
    path = f"attributes__{key}"
    op, value = cond["op"], cond.get("value")
    if op == "is_null":
        q = Q(**{"attributes__has_key": key})
        return ~q if value else q
    if op == "contains":
        return Q(**{"attributes__has_key": key}) & Q(**{f"{path}__icontains": value})
    if op in ("eq", "ne"):
        q = Q(**{"attributes__has_key": key}) & Q(**{path: value})
        return q if op == "eq" else ~q
    q = Q(**{"attributes__has_key": key}) & Q(**{f"{path}__in": value})
    return q if op == "in" else ~q


def _tags(cond, ctx):
    from .models import MemberTag

    ids = cond["value"]
    if cond["op"] == "has_all":
        q = Q()
        for tag_id in ids:
            q &= Exists(MemberTag.objects.filter(member=OuterRef("pk"), tag_id=tag_id))
        return q
    any_ = Exists(MemberTag.objects.filter(member=OuterRef("pk"), tag_id__in=ids))
    return any_ if cond["op"] == "has_any" else ~any_


def _coupon_expiring(cond, ctx):
    from coupons.queries import coupons_expiring_within

    soon = coupons_expiring_within(require_tenant(), cond["value"], as_of=ctx.as_of)
    return Exists(soon.filter(member=OuterRef("pk")))


def _counted_set(cond, ctx, per_member, value_path):
    """A figure computed per member in one GROUP BY: members whose figure meets the condition.
    Members absent from ``per_member`` have the figure 0 (counts) or none (shares)."""
    op = cond["op"]
    if op == "is_null":
        q = Q(pk__in=per_member.values("member_id"))
        return ~q if cond["value"] else q
    positive = dict(cond, op={"ne": "eq", "not_in": "in"}.get(op, op))
    matching = per_member.filter(_lookup(value_path, positive, ctx)).values("member_id")
    q = Q(pk__in=matching)
    if cond["spec"].type != "percent" and _number_holds(positive, Decimal(0)):
        q |= ~Q(pk__in=per_member.values("member_id"))
    return ~q if op in ("ne", "not_in") else q


def _event_count(cond, ctx):
    events = (
        Event.objects.filter(
            type=cond["event"], occurred_at__gte=ctx.as_of - timedelta(days=cond["days"]), occurred_at__lte=ctx.as_of
        )
        .order_by()
        .values("member_id")
        .annotate(n=Count("pk"))
    )
    return _counted_set(cond, ctx, events, "n")


def _counted_orders():
    return Order.objects.filter(member__isnull=False).exclude(status=Order.Status.REFUNDED).order_by()


def _share(cond, ctx, per_member):
    """share = part / whole as a percent, compared without dividing: part*100 op value*whole.

    ``per_member`` is correlated with the outer member, so the database works out the share only
    for members that pass the tree's cheaper conditions (EXISTS is planned as a sub-plan that runs
    last), instead of aggregating every order line of the brand."""
    op, value = cond["op"], cond.get("value")
    per_member = per_member.filter(whole__gt=0)
    if op == "is_null":
        q = Exists(per_member)
        return ~Q(q) if value else Q(q)
    scaled = ExpressionWrapper(F("part") * 100, output_field=DecimalField(max_digits=20, decimal_places=2))
    per_member = per_member.annotate(scaled=scaled)

    def times(v):
        return ExpressionWrapper(F("whole") * Value(v), output_field=DecimalField(max_digits=20, decimal_places=2))

    if op == "between":
        test = Q(scaled__gte=times(value[0])) & Q(scaled__lte=times(value[1]))
    elif op in ("eq", "ne"):
        test = Q(scaled=times(value))
    else:
        test = Q(**{f"scaled__{op}": times(value)})
    q = Q(Exists(per_member.filter(test)))
    return ~q if op == "ne" else q


def _spend_share(cond, ctx):
    chosen = Q()
    if cond.get("categories"):
        chosen |= Q(category__in=cond["categories"])
    if cond.get("skus"):
        chosen |= Q(sku__in=cond["skus"])
    # The lines are reached through the outer member's orders, so they are that member's tenant's:
    # no tenant test on the line itself, which lets the (order, category, sku, amount) index
    # answer without reading the lines.
    lines = (
        OrderLine.objects.unscoped().filter(order__member=OuterRef("pk"))
        .exclude(order__status=Order.Status.REFUNDED)
        .order_by()
        .values("order__member_id")
        .annotate(
            whole=Sum("amount"),
            part=Sum(Case(When(chosen, then=F("amount")), default=Value(Decimal("0")), output_field=DecimalField())),
        )
    )
    return _share(cond, ctx, lines)


def _coupon_order_share(cond, ctx):
    from coupons.models import Coupon

    used = Q(discount__gt=0) | Exists(
        Coupon.objects.filter(status=Coupon.Status.REDEEMED, order_external_id=OuterRef("external_id"))
    )
    orders = _counted_orders().filter(member=OuterRef("pk")).values("member_id").annotate(
        whole=Count("pk"), part=Sum(Case(When(used, then=Value(1)), default=Value(0))),
    )
    return _share(cond, ctx, orders)


def _in_segment(cond, ctx):
    from .models import Segment

    segment_id = cond["value"]
    if segment_id in ctx.segments_seen:
        raise ConditionError({cond["path"] + ".value": [_("A segment cannot contain itself.")]})
    rules = Segment.objects.filter(pk=segment_id).values_list("rules", flat=True).first()
    if rules is None:
        raise ConditionError({cond["path"] + ".value": [_("No segment with this id.")]})
    inner = Context(ctx.as_of, ctx.zone, ctx.segments_seen + (segment_id,))
    q = compile_tree(parse(rules, path=cond["path"] + ".value", depth=cond["depth"]), inner)
    return q if cond["op"] == "eq" else ~q


def _aov(cond, ctx):
    """Average order value over all orders = spend / orders, compared without dividing."""
    op, value = cond["op"], cond.get("value")
    has_orders = Q(lifecycle__orders_total__gt=0)
    if op == "is_null":
        return ~has_orders if value else has_orders

    def cmp(lookup, v):
        return Q(**{f"lifecycle__spend_total__{lookup}": F("lifecycle__orders_total") * Value(v)})

    if op == "between":
        q = cmp("gte", value[0]) & cmp("lte", value[1])
    elif op in ("eq", "ne"):
        q = cmp("exact", value)
    else:
        q = cmp(op, value)
    q = has_orders & q
    return ~q if op == "ne" else q


def _days_since_last_order(cond, ctx):
    """Whole days between the last order's local day and ``as_of``'s local day."""
    op, value = cond["op"], cond.get("value")
    path = "lifecycle__last_order_at"
    if op == "is_null":
        q = Q(**{f"{path}__isnull": True})
        return q if value else ~q

    def at_least(days):
        return Q(**{f"{path}__lt": ctx.midnight(ctx.today - timedelta(days=days - 1))})

    def at_most(days):
        return Q(**{f"{path}__gte": ctx.midnight(ctx.today - timedelta(days=days))})

    if op == "between":
        return at_least(value[0]) & at_most(value[1])
    if op in ("eq", "ne"):
        q = at_least(value) & at_most(value)
        return q if op == "eq" else ~q
    if op == "gt":
        return at_least(value + 1)
    if op == "gte":
        return at_least(value)
    if op == "lt":
        return at_most(value - 1) if value > 0 else Q(pk__lt=0)
    return at_most(value)


def _stage_choices():
    from lifecycle.models import Stage

    return Stage.choices


def _gender_choices():
    return Gender.choices


def _contact_choices():
    return ContactStatus.choices


def _event_choices():
    return EventType.choices


for spec in [
    FieldSpec("gender", gettext_lazy("Gender"), "choice", CHOICE_OPS, MEMBER, _gender_choices, compile=column("gender")),
    FieldSpec("city", gettext_lazy("City"), "text", TEXT_OPS, MEMBER, compile=column("city")),
    FieldSpec("home_store", gettext_lazy("Home store"), "ref", REF_OPS, MEMBER, compile=column("home_store_id"), nullable=True),
    FieldSpec("owner_guide", gettext_lazy("Guide"), "ref", REF_OPS, MEMBER, compile=column("owner_guide_id"), nullable=True),
    FieldSpec("joined_at", gettext_lazy("Joined"), "datetime", DATE_OPS, MEMBER, compile=datetime_column("joined_at")),
    FieldSpec("birthday", gettext_lazy("Birthday"), "date", DATE_OPS, MEMBER,
              compile=lambda c, ctx: _date_bounds("birthday", c, ctx), nullable=True),
    FieldSpec("birthday_month", gettext_lazy("Birthday month"), "integer",
              ("eq", "ne", "in", "not_in", "between", "this_month", "is_null"), MEMBER, compile=_birthday_month, nullable=True),
    FieldSpec("age", gettext_lazy("Age"), "integer", NUMBER_OPS, MEMBER, compile=_age, nullable=True),
    FieldSpec("source_channel", gettext_lazy("Source channel"), "text", TEXT_OPS, MEMBER, compile=column("source_channel")),
    FieldSpec("contact_status", gettext_lazy("Contact status"), "choice", CHOICE_OPS, MEMBER, _contact_choices,
              compile=column("contact_status")),
    FieldSpec("attribute", gettext_lazy("Custom attribute"), "text", TEXT_OPS, MEMBER, params={"key": "key"},
              compile=_attribute),
    FieldSpec("orders_total", gettext_lazy("Orders"), "integer", NUMBER_OPS[:-1], METRICS,
              compile=_coalesced_zero("lifecycle__orders_total")),
    FieldSpec("orders_90", gettext_lazy("Orders in the last 90 days"), "integer", NUMBER_OPS[:-1], METRICS,
              compile=_coalesced_zero("lifecycle__orders_90")),
    FieldSpec("orders_365", gettext_lazy("Orders in the last 365 days"), "integer", NUMBER_OPS[:-1], METRICS,
              compile=_coalesced_zero("lifecycle__orders_365")),
    FieldSpec("spend_total", gettext_lazy("Spend (¥)"), "decimal", NUMBER_OPS[:-1], METRICS,
              compile=_coalesced_zero("lifecycle__spend_total")),
    FieldSpec("spend_365", gettext_lazy("Spend in the last 365 days (¥)"), "decimal", NUMBER_OPS[:-1], METRICS,
              compile=_coalesced_zero("lifecycle__spend_365")),
    FieldSpec("aov", gettext_lazy("Average order value (¥)"), "decimal", NUMBER_OPS, METRICS, compile=_aov, nullable=True),
    FieldSpec("days_since_last_order", gettext_lazy("Days since the last order"), "integer", NUMBER_OPS, METRICS,
              compile=_days_since_last_order, nullable=True),
    FieldSpec("last_order_at", gettext_lazy("Last order"), "datetime", DATE_OPS, METRICS,
              compile=datetime_column("lifecycle__last_order_at"), nullable=True),
    FieldSpec("favourite_category", gettext_lazy("Favourite category"), "text", TEXT_OPS, METRICS,
              compile=column("lifecycle__favourite_category"), nullable=True),
    # Kept by the lifecycle runs: the store of most orders in the last 365 days (ties: the latest order).
    FieldSpec("preferred_store", gettext_lazy("Preferred store"), "ref", REF_OPS, METRICS,
              compile=column("lifecycle__preferred_store"), nullable=True),
    FieldSpec("stage", gettext_lazy("Lifecycle stage"), "choice", CHOICE_OPS, LIFECYCLE, _stage_choices,
              compile=column("lifecycle__stage")),
    FieldSpec("churn_warning", gettext_lazy("Churn warning"), "bool", ("eq",), LIFECYCLE,
              compile=column("lifecycle__churn_warning")),
    FieldSpec("tags", gettext_lazy("Tags"), "tags", TAG_OPS, TAGS, compile=_tags),
    FieldSpec("event_count", gettext_lazy("Interactions"), "integer", NUMBER_OPS[:-1], ACTIVITY, _event_choices,
              params={"event": "event", "days": "days"}, compile=_event_count),
    FieldSpec("coupon_expiring", gettext_lazy("Holds an unused coupon expiring within (days)"), "coupon",
              ("within_next_days",), COUPONS, compile=_coupon_expiring),
    FieldSpec("spend_share", gettext_lazy("Share of spend on chosen categories or SKUs (%)"), "percent", NUMBER_OPS,
              METRICS, params={"categories": "strings", "skus": "strings"}, compile=_spend_share, nullable=True),
    FieldSpec("coupon_order_share", gettext_lazy("Share of orders that used a coupon (%)"), "percent", NUMBER_OPS,
              METRICS, compile=_coupon_order_share, nullable=True),
    FieldSpec("segment", gettext_lazy("In segment"), "segment", ("eq", "ne"), gettext_lazy("Segments"), compile=_in_segment),
]:
    register(spec)


# ---------------------------------------------------------------- parsing

class _Parser:
    def __init__(self):
        self.errors = {}
        self.nodes = 0
        self.stores = {}
        self.guides = {}
        self.tags = {}
        self.segments = {}

    def fail(self, path, message):
        self.errors.setdefault(path, []).append(message)

    def node(self, raw, path, depth):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(path, _("A tree may have at most %(n)d conditions and groups.") % {"n": MAX_NODES})
            return None
        if depth > MAX_DEPTH:
            self.fail(path, _("Groups may be nested at most %(n)d deep.") % {"n": MAX_DEPTH})
            return None
        if not isinstance(raw, dict):
            self.fail(path, _("Must be an object: a group (all, any, not) or a condition (field, op, value)."))
            return None
        groups = [key for key in ("all", "any", "not") if key in raw]
        if groups:
            if len(raw) != 1:
                self.fail(path, _("A group has exactly one key: all, any or not."))
                return None
            kind = groups[0]
            child_path = f"{path}.{kind}"
            if kind == "not":
                child = self.node(raw["not"], child_path, depth + 1)
                return None if child is None else {"kind": "not", "child": child}
            children = raw[kind]
            if not isinstance(children, list):
                self.fail(child_path, _("Must be a list of conditions or groups."))
                return None
            if not children:
                self.fail(child_path, _("Add at least one condition."))
                return None
            if len(children) > MAX_CHILDREN:
                self.fail(child_path, _("A group may hold at most %(n)d items.") % {"n": MAX_CHILDREN})
                return None
            parsed = [self.node(child, f"{child_path}[{i}]", depth + 1) for i, child in enumerate(children)]
            if any(p is None for p in parsed):
                return None
            return {"kind": kind, "children": parsed}
        return self.condition(raw, path, depth)

    def condition(self, raw, path, depth):
        name = raw.get("field")
        if not isinstance(name, str) or name not in FIELDS:
            self.fail(f"{path}.field", _("Unknown field."))
            return None
        spec = FIELDS[name]
        allowed = {"field", "op", "value"} | set(spec.params)
        for key in raw:
            if key not in allowed:
                self.fail(f"{path}.{key}" if isinstance(key, str) and len(key) <= MAX_STRING else path,
                          _("Unknown key for this field."))
        op = raw.get("op")
        if not isinstance(op, str) or op not in spec.ops:
            self.fail(f"{path}.op", _("Not an operator of this field; use one of: %(ops)s.") % {"ops": ", ".join(spec.ops)})
            return None
        cond = {"kind": "cond", "field": name, "op": op, "spec": spec, "path": path, "depth": depth}
        for param, kind in spec.params.items():
            value = self.param(raw.get(param), kind, f"{path}.{param}", spec)
            if value is not None:
                cond[param] = value
        if name == "spend_share" and not (cond.get("categories") or cond.get("skus")):
            self.fail(f"{path}.categories", _("Choose at least one category or SKU."))
        if op in NO_VALUE_OPS:
            if raw.get("value") is not None:
                self.fail(f"{path}.value", _("This operator takes no value."))
            return cond
        if "value" not in raw:
            self.fail(f"{path}.value", _("This field is required."))
            return None
        value = self.value(raw["value"], spec, op, f"{path}.value")
        if value is None:
            return None
        cond["value"] = value
        if any(key.startswith(path + ".") or key == path for key in self.errors):
            return None
        return cond

    def param(self, raw, kind, path, spec):
        if kind == "key":
            if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,40}", raw):
                self.fail(path, _("An attribute key: 1 to 40 letters, digits or underscores."))
                return None
            return raw
        if kind == "event":
            if not isinstance(raw, str) or raw not in dict(EventType.choices):
                self.fail(path, _("Unknown event type."))
                return None
            return raw
        if kind == "days":
            return self.integer(raw, path, 1, MAX_DAYS)
        if kind == "strings":
            if raw is None:
                return []
            return self.strings(raw, path)
        raise AssertionError(kind)

    def integer(self, raw, path, low, high):
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(path, _("Must be a whole number."))
            return None
        if not low <= raw <= high:
            self.fail(path, _("Must be between %(low)d and %(high)d.") % {"low": low, "high": high})
            return None
        return raw

    def number(self, raw, path, low=-MAX_NUMBER, high=MAX_NUMBER):
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            self.fail(path, _("Must be a number."))
            return None
        if isinstance(raw, str) and len(raw) > 30:
            self.fail(path, _("Must be a number."))
            return None
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            self.fail(path, _("Must be a number."))
            return None
        if not value.is_finite() or not low <= value <= high:
            self.fail(path, _("Must be between %(low)s and %(high)s.") % {"low": low, "high": high})
            return None
        return value

    def string(self, raw, path):
        if not isinstance(raw, str):
            self.fail(path, _("Must be text."))
            return None
        if len(raw) > MAX_STRING:
            self.fail(path, _("At most %(n)d characters.") % {"n": MAX_STRING})
            return None
        return raw

    def strings(self, raw, path):
        if not isinstance(raw, list):
            self.fail(path, _("Must be a list."))
            return None
        if len(raw) > MAX_LIST:
            self.fail(path, _("At most %(n)d items.") % {"n": MAX_LIST})
            return None
        out = [self.string(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        return None if any(v is None for v in out) else out

    def date(self, raw, path):
        if not isinstance(raw, str) or len(raw) > 10:
            self.fail(path, _("Must be a date, YYYY-MM-DD."))
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.fail(path, _("Must be a date, YYYY-MM-DD."))
            return None

    def scalar(self, raw, spec, path):
        kind = spec.type
        if kind in ("decimal", "number"):
            return self.number(raw, path)
        if kind == "percent":
            return self.number(raw, path, Decimal(0), Decimal(100))
        if kind == "integer":
            high = 12 if spec.key == "birthday_month" else 10**6
            low = 1 if spec.key == "birthday_month" else 0
            return self.integer(raw, path, low, high)
        if kind in ("date", "datetime"):
            return self.date(raw, path)
        if kind == "choice":
            if not isinstance(raw, str) or raw not in dict(spec.choices()):
                self.fail(path, _("Not one of the choices."))
                return None
            return raw
        if kind == "text":
            if spec.key == "attribute" and isinstance(raw, (int, float)) and not isinstance(raw, bool):
                return raw
            return self.string(raw, path)
        if kind == "bool":
            if not isinstance(raw, bool):
                self.fail(path, _("Must be true or false."))
                return None
            return raw
        if kind in ("ref", "tags", "segment"):
            return self.integer(raw, path, 1, 2**62)
        raise AssertionError(kind)

    def value(self, raw, spec, op, path):
        if op == "is_null":
            if not isinstance(raw, bool):
                self.fail(path, _("Must be true or false."))
                return None
            return raw
        if op == "within_last_days" or op == "within_next_days":
            return self.integer(raw, path, 1, MAX_DAYS)
        if op in ("in", "not_in", "has_any", "has_all", "has_none", "between"):
            if not isinstance(raw, list):
                self.fail(path, _("Must be a list."))
                return None
            if op == "between" and len(raw) != 2:
                self.fail(path, _("Must be a list of two values, low and high."))
                return None
            if not raw:
                self.fail(path, _("Choose at least one."))
                return None
            limit = MAX_CHILDREN if op == "has_all" else MAX_LIST
            if len(raw) > limit:
                self.fail(path, _("At most %(n)d items.") % {"n": limit})
                return None
            values = [self.scalar(item, spec, f"{path}[{i}]") for i, item in enumerate(raw)]
            if any(v is None for v in values):
                return None
            if op == "between" and values[0] > values[1]:
                self.fail(path, _("The low value is above the high value."))
                return None
            self.check_refs(spec, values, path)
            return values
        value = self.scalar(raw, spec, path)
        if value is not None:
            self.check_refs(spec, [value], path)
        return value

    def check_refs(self, spec, ids, path):
        """Stores, guides, tags and segments are looked up in the current tenant only."""
        from .models import Segment, Tag

        model = {"home_store": Store, "preferred_store": Store, "owner_guide": Staff, "tags": Tag,
                 "segment": Segment}.get(spec.key)
        if model is None:
            return
        found = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            noun = {Store: _("store"), Staff: _("staff member"), Tag: _("tag"), Segment: _("segment")}[model]
            self.fail(path, _("No %(noun)s with id %(ids)s.") % {"noun": noun, "ids": ", ".join(map(str, missing))})


def parse(raw, path="rules", depth=0):
    """Validate a tree; return its parsed form or raise ConditionError naming each bad path."""
    parser = _Parser()
    tree = parser.node(raw, path, depth)
    if parser.errors or tree is None:
        raise ConditionError(parser.errors or {path: [_("Invalid condition tree.")]})
    return tree


def compile_tree(tree, ctx):
    kind = tree["kind"]
    if kind == "cond":
        return tree["spec"].compile(tree, ctx)
    if kind == "not":
        return ~compile_tree(tree["child"], ctx)
    parts = [compile_tree(child, ctx) for child in tree["children"]]
    q = parts[0]
    for part in parts[1:]:
        q = (q & part) if kind == "all" else (q | part)
    return q


def referenced_segments(raw):
    """Ids of the segments a stored tree names (to refuse cycles before saving)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("field") == "segment" and isinstance(node.get("value"), int):
                found.append(node["value"])
            for key in ("all", "any"):
                if isinstance(node.get(key), list):
                    for child in node[key]:
                        walk(child)
            if "not" in node:
                walk(node["not"])

    walk(raw)
    return found


def field_catalogue():
    """The fields, their operators and choices, for the segment builder and the API."""
    out = []
    for spec in FIELDS.values():
        item = {
            "field": spec.key, "label": str(spec.label), "type": spec.type, "ops": list(spec.ops),
            "category": str(spec.category), "params": dict(spec.params),
        }
        if spec.choices is not None:
            item["choices"] = [[value, str(label)] for value, label in spec.choices()]
        out.append(item)
    return out


