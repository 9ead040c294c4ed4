"""Hand-built members and orders, written through the real ingestion services."""
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

from lifecycle.models import MemberLifecycle, StageChange
from members import services as members
from members.models import Member

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2025, 6, 30, 2, 0, tzinfo=SHANGHAI)
DAY = timedelta(days=1)
_numbers = count(1)


def days_before(days, as_of=AS_OF, **extra):
    return as_of - timedelta(days=days, **extra)


class Shop:
    """Writes members, orders and events for one brand, the way integrators do."""

    def __init__(self, brand):
        self.brand = brand
        self.tenant = brand.tenant

    def member(self, joined_days_ago=400, joined_at=None, as_of=AS_OF, **fields):
        external_id = fields.pop("external_id", f"M{next(_numbers):06d}")
        data = {"external_id": external_id, "joined_at": joined_at or days_before(joined_days_ago, as_of), **fields}
        outcomes, errors = members.upsert_members(self.tenant, [(0, data)])
        assert not errors, errors
        return Member.objects.unscoped().get(pk=outcomes[0]["id"])

    def order(self, member, placed_at, total="100.00", refunded="0", status=None, category="", external_id=None, store=None):
        total, refunded = Decimal(total), Decimal(refunded)
        data = {
            "external_id": external_id or f"O{next(_numbers):07d}",
            "member_external_id": member.external_id,
            "placed_at": placed_at,
            "total": total,
            "refunded_amount": refunded,
            "status": status or ("paid" if not refunded else ("refunded" if refunded >= total else "partially_refunded")),
        }
        if store is not None:
            data["store"] = store
        if category:
            data["lines"] = [{"sku": "SKU-" + category, "category": category, "quantity": 1, "unit_price": total, "amount": total}]
        outcomes, errors = members.ingest_orders(self.tenant, [(0, data)])
        assert not errors, errors
        return outcomes[0]

    def refund(self, external_id, total, refunded):
        total, refunded = Decimal(total), Decimal(refunded)
        outcomes, errors = members.ingest_orders(self.tenant, [(0, {
            "external_id": external_id, "total": total, "refunded_amount": refunded,
            "status": "refunded" if refunded >= total else "partially_refunded",
        })])
        assert not errors, errors

    def event(self, member, type, occurred_at):
        outcomes, errors = members.ingest_events(
            self.tenant, [(0, {"member_external_id": member.external_id, "type": type, "occurred_at": occurred_at})]
        )
        assert not errors, errors


def state(member):
    return MemberLifecycle.objects.unscoped().get(member_id=member.pk)


def stage_of(member):
    row = state(member)
    return row.stage


def history(member):
    return list(
        StageChange.objects.unscoped().filter(member_id=member.pk).order_by("at", "id")
        .values_list("from_stage", "to_stage")
    )


def generate(brands, seed, start, days, members=60):
    """The same random membership for each brand: joins over two years before ``start`` and
    during the simulated ``days``, up to ten orders each, refunds, and guides deleted and re-added.
    Returns a list of later edits (day, action) to replay with ``apply_edit``."""
    import random

    rnd = random.Random(seed)
    member_rows, order_rows, event_rows, edits = [], [], [], []
    for i in range(members):
        joined = start - timedelta(hours=rnd.randrange(730 * 24)) + timedelta(hours=rnd.randrange(days * 24) if i % 5 == 0 else 0)
        member_rows.append({"external_id": f"G{seed}-{i:04d}", "joined_at": joined})
        for j in range(rnd.choice([0, 1, 1, 2, 3, 4, 6, 10])):
            placed = joined + timedelta(hours=rnd.randrange(max(1, int((start + timedelta(days=days) - joined).total_seconds() // 3600))))
            total = Decimal(rnd.choice(["59.00", "99.90", "199.00", "399.00", "1299.00"]))
            refunded = rnd.choice([Decimal(0)] * 8 + [total, (total / 2).quantize(Decimal("0.01"))])
            order_rows.append({
                "external_id": f"GO{seed}-{i:04d}-{j}", "member_external_id": f"G{seed}-{i:04d}", "placed_at": placed,
                "total": total, "refunded_amount": refunded,
                "status": "paid" if not refunded else ("refunded" if refunded == total else "partially_refunded"),
                "lines": [{"sku": "S", "category": rnd.choice(["tops", "shoes", "bags"]), "quantity": 1, "unit_price": total, "amount": total}],
            })
        if rnd.random() < 0.15:
            event_rows.append({
                "member_external_id": f"G{seed}-{i:04d}", "type": "contact_deleted",
                "occurred_at": start + timedelta(hours=rnd.randrange(days * 24)),
            })
        if rnd.random() < 0.3:
            event_rows.append({
                "member_external_id": f"G{seed}-{i:04d}", "type": "message_read",
                "occurred_at": start - timedelta(days=30) + timedelta(hours=rnd.randrange((days + 30) * 24)),
            })
    for k in range(max(1, days // 10)):
        day = rnd.randrange(1, max(2, days))
        order = rnd.choice(order_rows)
        edits.append((day, ("refund", order["external_id"], order["total"])))
        edits.append((day, ("late_member", f"L{seed}-{k:03d}", start + timedelta(days=day) - timedelta(days=rnd.randrange(400)))))
    for brand in brands:
        _ingest(brand, member_rows, order_rows, event_rows)
    return sorted(edits, key=lambda e: e[0])


def _ingest(brand, member_rows, order_rows, event_rows):
    with brand.scope():
        _ingest_in_scope(brand, member_rows, order_rows, event_rows)


def _ingest_in_scope(brand, member_rows, order_rows, event_rows):
    _, errors = members.upsert_members(brand.tenant, list(enumerate(member_rows)))
    assert not errors, errors
    _, errors = members.ingest_orders(brand.tenant, list(enumerate(order_rows)))
    assert not errors, errors
    if event_rows:
        _, errors = members.ingest_events(brand.tenant, list(enumerate(sorted(event_rows, key=lambda e: e["occurred_at"]))))
        assert not errors, errors


def apply_edit(brand, edit):
    with brand.scope():
        _apply_edit(brand, edit)


def _apply_edit(brand, edit):
    kind, key, value = edit
    if kind == "refund":
        _, errors = members.ingest_orders(brand.tenant, [(0, {
            "external_id": key, "total": value, "refunded_amount": value, "status": "refunded",
        })])
    else:
        _, errors = members.upsert_members(brand.tenant, [(0, {"external_id": key, "joined_at": value})])
        assert not errors, errors
        _, errors = members.ingest_orders(brand.tenant, [(0, {
            "external_id": "O" + key, "member_external_id": key, "placed_at": value + timedelta(days=3),
            "total": Decimal("88.00"), "refunded_amount": Decimal(0), "status": "paid",
        })])
    assert not errors, errors


def states_by_external_id(brand):
    """Every member's stored metrics and stage, keyed by external id (comparable across brands)."""
    fields = [
        "member__external_id", "joined_at", "first_order_at", "last_order_at", "orders_total", "orders_90",
        "orders_365", "spend_total", "spend_90", "spend_365", "aov_90", "aov_prev", "favourite_category",
        "preferred_store_id", "last_interaction_at", "contact_status", "days_to_first_order", "stage", "rule", "churn_warning",
        "warning_rule", "stage_since", "warning_since",
    ]
    rows = MemberLifecycle.objects.unscoped().filter(tenant=brand.tenant).values_list(*fields)
    return {row[0]: row[1:] for row in rows}


def changes_by_external_id(brand):
    return sorted(
        StageChange.objects.unscoped().filter(tenant=brand.tenant).values_list(
            "member__external_id", "at", "from_stage", "to_stage", "from_warning", "to_warning", "rule"
        )
    )
