"""The segment compiler against a plain Python reading of the same tree, on generated members.

The members, orders, events, tags, coupons and lifecycle metrics are made by the real services;
hypothesis then draws many random trees and each is evaluated both ways.
"""
import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from coupons.models import Coupon, CouponTemplate
from coupons.services import issue_coupons, redeem_coupon
from lifecycle.models import MemberLifecycle
from lifecycle.services import score_full
from members.models import Event, Member, Order, OrderLine
from members.services import ingest_events
from tagging.models import MemberTag, Tag, TagGroup
from tagging.services import apply_tags, members_matching, save_segment

from .conftest import AS_OF, SHANGHAI, add_members, add_orders

CITIES = ["上海", "杭州", "北京", ""]
CHANNELS = ["store_qr", "parcel_card", "sms", ""]
CATEGORIES = ["外套", "t恤", "袜子", "内衣"]
SKUS = ["SKU1", "SKU2", "SKU3", "SKU4"]
SIZES = ["s", "m", "l"]
TOTALS = [Decimal(v) for v in ("50.00", "99.99", "100.00", "150.00", "300.00", "300.01", "800.00")]
TODAY = AS_OF.date()


def _birthday(rnd):
    roll = rnd.random()
    if roll < 0.15:
        return None
    if roll < 0.3:  # around today's day, to test age and month edges
        years = rnd.choice([18, 25, 30, 40])
        day = TODAY + timedelta(days=rnd.choice([-1, 0, 1]))
        return day.replace(year=day.year - years)
    if roll < 0.35:
        return date(rnd.choice([1992, 1996, 2000]), 2, 29)
    return date(rnd.randint(1960, 2010), rnd.randint(1, 12), rnd.randint(1, 28))


class Population:
    def __init__(self, brand):
        rnd = random.Random(20260615)
        self.brand = brand
        stores = [brand.store, brand.store2, None]
        guides = [brand.guide, brand.guide2, None]
        rows = []
        for i in range(80):
            attributes = {}
            if rnd.random() < 0.6:
                attributes["size"] = rnd.choice(SIZES)
            if rnd.random() < 0.4:
                attributes["level"] = rnd.randint(1, 3)
            rows.append({
                "external_id": f"P{i:03d}", "name": f"会员{i}",
                "gender": rnd.choice(["female", "male", "unknown"]), "city": rnd.choice(CITIES),
                "home_store": rnd.choice(stores), "owner_guide": rnd.choice(guides),
                "joined_at": AS_OF - timedelta(days=rnd.choice([0, 1, 5, 30, 59, 60, 61, 200, 800]), hours=rnd.randint(0, 23)),
                "birthday": _birthday(rnd), "source_channel": rnd.choice(CHANNELS),
                "contact_status": rnd.choice(["active", "active", "deleted_by_customer"]), "attributes": attributes,
            })
        self.ids = add_members(brand, rows)
        orders = []
        for i in range(80):
            for n in range(rnd.choice([0, 0, 1, 2, 3, 5, 6])):
                total = rnd.choice(TOTALS)
                split = (total / 2).quantize(Decimal("0.01"))
                orders.append({
                    "external_id": f"O{i:03d}-{n}", "member_external_id": f"P{i:03d}", "total": total,
                    "discount": rnd.choice([Decimal("0"), Decimal("0"), Decimal("10.00")]),
                    "placed_at": AS_OF - timedelta(days=rnd.choice([1, 20, 89, 91, 200, 364, 366, 500]), hours=rnd.randint(0, 23)),
                    "store": rnd.choice(stores), "status": rnd.choice(["paid"] * 6 + ["refunded"]),
                    "lines": [
                        {"sku": rnd.choice(SKUS), "category": rnd.choice(CATEGORIES), "quantity": 1, "unit_price": split, "amount": split},
                        {"sku": rnd.choice(SKUS), "category": rnd.choice(CATEGORIES), "quantity": 1,
                         "unit_price": total - split, "amount": total - split},
                    ],
                })
        add_orders(brand, orders)
        events = [
            (k, {"member_external_id": f"P{rnd.randrange(80):03d}", "type": rnd.choice(["message_replied", "message_read"]),
                 "occurred_at": AS_OF - timedelta(days=rnd.choice([0, 3, 29, 31, 60]), hours=rnd.randint(1, 5))})
            for k in range(120)
        ]
        with brand.scope():
            _outcomes, errors = ingest_events(brand.tenant, events)
            assert not errors
            group = TagGroup.objects.create(name="兴趣")
            self.tags = [Tag.objects.create(group=group, name=name).pk for name in ("KOC", "VIP", "价格敏感")]
            for tag in self.tags:
                chosen = rnd.sample(self.ids, 25)
                apply_tags(brand.tenant, Member.objects.filter(pk__in=chosen), add=[tag])
            for days, issued_ago in ((5, 2), (12, 1), (40, 3)):
                template = CouponTemplate.objects.create(
                    name=f"券{days}", type="cash_off", amount=Decimal("10.00"), validity="days", valid_days=days,
                    per_member_limit=None,
                )
                issue_coupons(brand.tenant, template, rnd.sample(self.ids, 30), as_of=AS_OF - timedelta(days=issued_ago))
            paid = list(Order.objects.filter(status="paid", member__isnull=False).values_list("member_id", "external_id"))
            by_member = dict(paid)
            for coupon in Coupon.objects.filter(member_id__in=list(by_member))[:15]:
                redeem_coupon(brand.tenant, coupon.code, order_external_id=by_member[coupon.member_id],
                              amount=Decimal("500.00"), as_of=AS_OF - timedelta(hours=1))
            score_full(brand.tenant, AS_OF)
        # Members who arrived after the last scoring run have no metrics row yet.
        self.ids += add_members(brand, [
            {"external_id": f"LATE{i}", "gender": rnd.choice(["female", "male"]), "joined_at": AS_OF - timedelta(hours=i + 1),
             "city": rnd.choice(CITIES)}
            for i in range(6)
        ])
        with brand.scope():
            self.female = save_segment(brand.tenant, {"name": "女", "rules": {"field": "gender", "op": "eq", "value": "female"}})
            self.nested = save_segment(brand.tenant, {"name": "常客或KOC", "rules": {"any": [
                {"field": "tags", "op": "has_any", "value": [self.tags[0]]},
                {"field": "orders_total", "op": "gte", "value": 3},
            ]}})
            self.load()

    def load(self):
        """Everything the plain evaluator reads, in Python structures."""
        self.members = {m.pk: m for m in Member.objects.all()}
        self.lifecycle = {row.member_id: row for row in MemberLifecycle.objects.all()}
        self.member_tags = defaultdict(set)
        for member_id, tag_id in MemberTag.objects.values_list("member_id", "tag_id"):
            self.member_tags[member_id].add(tag_id)
        self.orders = defaultdict(list)
        lines = defaultdict(list)
        for line in OrderLine.objects.all():
            lines[line.order_id].append(line)
        for order in Order.objects.filter(member__isnull=False):
            order.all_lines = lines[order.pk]
            self.orders[order.member_id].append(order)
        self.events = defaultdict(list)
        for event in Event.objects.all():
            self.events[event.member_id].append(event)
        self.coupons = defaultdict(list)
        for coupon in Coupon.objects.all():
            self.coupons[coupon.member_id].append(coupon)
        self.redeemed_orders = set(
            Coupon.objects.filter(status="redeemed").values_list("order_external_id", flat=True)
        )
        self.segment_rules = {self.female.pk: self.female.rules, self.nested.pk: self.nested.rules}


# ---------------------------------------------------------------- the plain evaluator

def _local_day(moment):
    return moment.astimezone(SHANGHAI).date()


def _decimal(value):
    """Amounts travel in the tree as JSON strings or numbers."""
    if isinstance(value, list):
        return [_decimal(v) for v in value]
    return Decimal(str(value))


def _compare(op, actual, value):
    if op == "ne":
        return not _compare("eq", actual, value)
    if op == "not_in":
        return not _compare("in", actual, value)
    if actual is None:
        return False
    if op == "eq":
        return actual == value
    if op == "in":
        return actual in value
    if op == "between":
        return value[0] <= actual <= value[1]
    return {"gt": actual > value, "gte": actual >= value, "lt": actual < value, "lte": actual <= value}[op]


def _text(op, actual, value):
    if op == "is_null":
        return (actual is None or actual == "") == value
    if op == "contains":
        return actual is not None and value.lower() in actual.lower()
    return _compare(op, actual, value)


def _day(op, actual_day, value, within):
    """Compare a local day; ``within`` says whether the moment is in the last N days."""
    if op == "is_null":
        return (actual_day is None) == value
    if actual_day is None:
        return op in ("ne",)
    if op == "within_last_days":
        return within(value)
    if op == "this_month":
        return (actual_day.year, actual_day.month) == (TODAY.year, TODAY.month)
    parsed = [date.fromisoformat(v) for v in value] if isinstance(value, list) else date.fromisoformat(value)
    return _compare(op, actual_day, parsed)


def _moment(op, moment, value):
    day = _local_day(moment) if moment is not None else None
    return _day(op, day, value, lambda n: moment is not None and AS_OF - timedelta(days=n) <= moment <= AS_OF)


def _age(birthday):
    if birthday is None:
        return None
    return TODAY.year - birthday.year - ((TODAY.month, TODAY.day) < (birthday.month, birthday.day))


def _counted(orders):
    return [o for o in orders if o.status != "refunded"]


def _preferred_store(orders):
    stats = {}
    for order in _counted(orders):
        if order.store_id is None or not AS_OF - timedelta(days=365) < order.placed_at <= AS_OF:
            continue
        n, last = stats.get(order.store_id, (0, None))
        stats[order.store_id] = (n + 1, max(last, order.placed_at) if last else order.placed_at)
    if not stats:
        return None
    return max(stats, key=lambda s: (stats[s][0], stats[s][1], -s))


def _share(op, part, whole, value):
    if op == "is_null":
        return (whole is None) == value
    if op == "ne":
        return not _share("eq", part, whole, value)
    if whole is None:
        return False
    scaled = part * 100
    if op == "between":
        return value[0] * whole <= scaled <= value[1] * whole
    return _compare(op, scaled, Decimal(str(value)) * whole)


def evaluate(pop, member, node):
    if "all" in node:
        return all(evaluate(pop, member, child) for child in node["all"])
    if "any" in node:
        return any(evaluate(pop, member, child) for child in node["any"])
    if "not" in node:
        return not evaluate(pop, member, node["not"])
    field, op, value = node["field"], node["op"], node.get("value")
    lc = pop.lifecycle.get(member.pk)
    orders = pop.orders[member.pk]
    if field in ("gender", "contact_status", "city", "source_channel"):
        return _text(op, getattr(member, field), value)
    if field in ("home_store", "owner_guide"):
        actual = getattr(member, f"{field}_id")
        return (actual is None) == value if op == "is_null" else _compare(op, actual, value)
    if field == "joined_at":
        return _moment(op, member.joined_at, value)
    if field == "last_order_at":
        return _moment(op, lc.last_order_at if lc else None, value)
    if field == "birthday":
        b = member.birthday
        return _day(op, b, value, lambda n: b is not None and TODAY - timedelta(days=n) <= b <= TODAY)
    if field == "birthday_month":
        month = member.birthday.month if member.birthday else None
        if op == "is_null":
            return (month is None) == value
        if op == "this_month":
            return month == TODAY.month
        return _compare(op, month, value)
    if field == "age":
        age = _age(member.birthday)
        return (age is None) == value if op == "is_null" else _compare(op, age, value)
    if field == "attribute":
        attrs = member.attributes
        key = node["key"]
        if op == "is_null":
            return (key not in attrs) == value
        if op == "contains":
            return isinstance(attrs.get(key), str) and value.lower() in attrs[key].lower()
        return _compare(op, attrs.get(key), value)
    if field in ("orders_total", "orders_90", "orders_365", "spend_total", "spend_365"):
        return _compare(op, getattr(lc, field) if lc else 0, _decimal(value))
    if field == "aov":
        n = lc.orders_total if lc else 0
        if op == "is_null":
            return (n == 0) == value
        if op == "ne":
            return not evaluate(pop, member, dict(node, op="eq"))
        if n == 0:
            return False
        spend = lc.spend_total
        value = _decimal(value)
        if op == "between":
            return value[0] * n <= spend <= value[1] * n
        return _compare(op, spend, Decimal(str(value)) * n)
    if field == "days_since_last_order":
        last = lc.last_order_at if lc else None
        days = (TODAY - _local_day(last)).days if last else None
        return (days is None) == value if op == "is_null" else _compare(op, days, value)
    if field == "favourite_category":
        return _text(op, lc.favourite_category if lc else None, value)
    if field == "preferred_store":
        store = _preferred_store(orders)
        return (store is None) == value if op == "is_null" else _compare(op, store, value)
    if field == "stage":
        return _compare(op, lc.stage if lc else None, value)
    if field == "churn_warning":
        return _compare(op, lc.churn_warning if lc else None, value)
    if field == "tags":
        held = pop.member_tags[member.pk]
        if op == "has_any":
            return bool(held & set(value))
        if op == "has_all":
            return set(value) <= held
        return not held & set(value)
    if field == "event_count":
        since = AS_OF - timedelta(days=node["days"])
        n = sum(1 for e in pop.events[member.pk] if e.type == node["event"] and since <= e.occurred_at <= AS_OF)
        return _compare(op, n, value)
    if field == "coupon_expiring":
        return any(
            c.status in Coupon.USABLE and AS_OF < c.expires_at <= AS_OF + timedelta(days=value)
            for c in pop.coupons[member.pk]
        )
    if field == "spend_share":
        lines = [line for o in _counted(orders) for line in o.all_lines]
        whole = sum((line.amount for line in lines), Decimal(0))
        part = sum(
            (line.amount for line in lines
             if line.category in node.get("categories", []) or line.sku in node.get("skus", [])), Decimal(0),
        )
        return _share(op, part, whole if whole > 0 else None, value)
    if field == "coupon_order_share":
        counted = _counted(orders)
        part = sum(1 for o in counted if o.discount > 0 or o.external_id in pop.redeemed_orders)
        return _share(op, Decimal(part), Decimal(len(counted)) if counted else None, value)
    if field == "segment":
        inside = evaluate(pop, member, pop.segment_rules[value])
        return inside if op == "eq" else not inside
    raise AssertionError(field)


# ---------------------------------------------------------------- random trees

def _order_key(value):
    """Amounts sort as numbers, ISO dates as text."""
    if isinstance(value, str) and "-" in value:
        return Decimal(value.replace("-", ""))
    return Decimal(str(value))


def conditions(pop):
    brand = pop.brand
    ints = st.sampled_from([0, 1, 2, 3, 5, 6])
    money = st.sampled_from(["0", "99.99", "100", "150", "300", "300.01", "1000"])
    pct = st.sampled_from([0, 10, 25, 50, 60, 100])
    dates = st.sampled_from(["2024-02-29", "2025-01-01", "2026-04-16", "2026-05-17", "2026-06-14", "2026-06-15"])
    days = st.sampled_from([1, 7, 30, 60, 61, 90, 365])
    store_ids = st.sampled_from([brand.store.pk, brand.store2.pk])
    guide_ids = st.sampled_from([brand.guide.pk, brand.guide2.pk])

    def number_ops(values, ops=("eq", "ne", "gt", "gte", "lt", "lte")):
        return st.one_of(
            st.tuples(st.sampled_from(ops), values),
            st.tuples(st.just("between"), st.lists(values, min_size=2, max_size=2).map(
                lambda pair: sorted(pair, key=_order_key))),
        )

    def listed(values):
        return st.tuples(st.sampled_from(["in", "not_in"]), st.lists(values, min_size=1, max_size=3, unique=True))

    def choice(values):
        return st.one_of(st.tuples(st.sampled_from(["eq", "ne"]), values), listed(values))

    def text(values):
        return st.one_of(choice(values), st.tuples(st.just("contains"), values.filter(bool)),
                         st.tuples(st.just("is_null"), st.booleans()))

    def ref(values):
        return st.one_of(choice(values), st.tuples(st.just("is_null"), st.booleans()))

    def moment(values=dates):
        return st.one_of(
            number_ops(values), st.tuples(st.just("within_last_days"), days), st.tuples(st.just("this_month"), st.none()),
            st.tuples(st.just("is_null"), st.booleans()),
        )

    def make(field, pairs, **extra):
        return pairs.map(lambda p: {"field": field, "op": p[0], **({} if p[1] is None else {"value": p[1]}), **extra})

    tag_ids = st.sampled_from(pop.tags)
    return st.one_of(
        make("gender", choice(st.sampled_from(["female", "male", "unknown"]))),
        make("city", text(st.sampled_from(CITIES))),
        make("source_channel", text(st.sampled_from(CHANNELS))),
        make("contact_status", choice(st.sampled_from(["active", "deleted_by_customer"]))),
        make("home_store", ref(store_ids)),
        make("owner_guide", ref(guide_ids)),
        make("joined_at", moment()),
        make("birthday", moment(st.sampled_from(["1992-02-29", "2000-06-15", "2008-06-16", "1990-01-01"]))),
        make("birthday_month", st.one_of(choice(st.integers(1, 12)), st.tuples(st.just("this_month"), st.none()),
                                         st.tuples(st.just("is_null"), st.booleans()))),
        make("age", st.one_of(number_ops(st.sampled_from([0, 17, 18, 25, 26, 30, 40, 41])),
                              st.tuples(st.just("is_null"), st.booleans()))),
        st.one_of(
            make("attribute", text(st.sampled_from(SIZES)), key="size"),
            make("attribute", st.one_of(choice(st.integers(1, 3)), st.tuples(st.just("is_null"), st.booleans())), key="level"),
        ),
        make("orders_total", number_ops(ints)),
        make("orders_90", number_ops(ints)),
        make("orders_365", number_ops(ints)),
        make("spend_total", number_ops(money)),
        make("spend_365", number_ops(money)),
        make("aov", st.one_of(number_ops(money), st.tuples(st.just("is_null"), st.booleans()))),
        make("days_since_last_order", st.one_of(number_ops(st.sampled_from([0, 1, 20, 89, 90, 91, 200])),
                                                st.tuples(st.just("is_null"), st.booleans()))),
        make("last_order_at", moment()),
        make("favourite_category", text(st.sampled_from(CATEGORIES))),
        make("preferred_store", ref(store_ids)),
        make("stage", choice(st.sampled_from(["introduction", "growth", "maturity", "dormant", "churned"]))),
        make("churn_warning", st.tuples(st.just("eq"), st.booleans())),
        make("tags", st.tuples(st.sampled_from(["has_any", "has_all", "has_none"]),
                               st.lists(tag_ids, min_size=1, max_size=3, unique=True))),
        st.builds(
            lambda event, d, pair: {"field": "event_count", "event": event, "days": d, "op": pair[0], "value": pair[1]},
            st.sampled_from(["message_replied", "message_read"]), days, number_ops(ints),
        ),
        make("coupon_expiring", st.tuples(st.just("within_next_days"), st.sampled_from([1, 3, 7, 10, 30, 60]))),
        st.builds(
            lambda cats, skus, pair: {"field": "spend_share", "categories": cats, "skus": skus, "op": pair[0], "value": pair[1]},
            st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True), st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True),
            st.one_of(number_ops(pct), st.tuples(st.just("is_null"), st.booleans())),
        ),
        make("coupon_order_share", st.one_of(number_ops(pct), st.tuples(st.just("is_null"), st.booleans()))),
        make("segment", st.tuples(st.sampled_from(["eq", "ne"]), st.sampled_from([pop.female.pk, pop.nested.pk]))),
    )


def trees(leaves, depth=0):
    if depth >= 3:
        return leaves
    inner = trees(leaves, depth + 1)
    return st.one_of(
        leaves,
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    )


@pytest.fixture
def population(brand):
    return Population(brand)


Population.__repr__ = lambda self: "Population()"


class Trees:
    """The strategy, behind a short name: hypothesis prints the fixtures of a failing example."""

    def __init__(self, population):
        self.strategy = trees(conditions(population))

    def __repr__(self):
        return "Trees()"


@pytest.fixture
def tree_strategy(population):
    return Trees(population)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_compiled_query_selects_exactly_the_members_the_plain_evaluation_selects(population, tree_strategy, data):
    tree = data.draw(tree_strategy.strategy, label="tree")
    with population.brand.scope():
        compiled = set(members_matching(population.brand.tenant, tree, AS_OF).values_list("pk", flat=True))
    expected = {pk for pk, member in population.members.items() if evaluate(population, member, tree)}
    assert compiled == expected


def test_the_generated_population_covers_each_kind_of_value(population):
    """Guards the property test against a population too uniform to find anything."""
    pop = population
    assert {lc.stage for lc in pop.lifecycle.values()} >= {"introduction", "growth"}
    assert any(pop.coupons.values()) and pop.redeemed_orders
    assert any(m.birthday is None for m in pop.members.values()) and any(m.birthday for m in pop.members.values())
    assert any(not orders for orders in (pop.orders[pk] for pk in pop.members))
    assert any(o.status == "refunded" for orders in pop.orders.values() for o in orders)
    assert any(pk not in pop.lifecycle for pk in pop.members)
