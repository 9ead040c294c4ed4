"""Members, orders, campaigns and lifecycle runs made through the real services."""
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

from campaigns.models import Campaign, Step
from coupons.models import CouponTemplate
from lifecycle import services as lifecycle
from members import services as members
from members.models import Member

SHANGHAI = ZoneInfo("Asia/Shanghai")
_numbers = count(1)


def at(text):
    """An aware time in Shanghai: at("2026-03-02 10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


T0 = at("2026-03-02 10:00")


def member(brand, joined_at=None, **fields):
    data = {"external_id": f"C{next(_numbers):06d}", "name": "会员", "joined_at": joined_at or T0 - timedelta(days=30),
            "owner_guide": brand.guide, "home_store": brand.store, **fields}
    outcomes, errors = members.upsert_members(brand.tenant, [(0, data)])
    assert not errors, errors
    return Member.objects.get(pk=outcomes[0]["id"])


def many_members(brand, n, **fields):
    items = [(i, {"external_id": f"B{next(_numbers):06d}", "name": f"会员{i}", "joined_at": T0 - timedelta(days=30),
                  "owner_guide": brand.guide, "home_store": brand.store, **fields}) for i in range(n)]
    outcomes, errors = members.upsert_members(brand.tenant, items)
    assert not errors, errors
    return [outcomes[i]["id"] for i in range(n)]


def order(brand, who, placed_at, total="199.00", category=""):
    data = {"external_id": f"O{next(_numbers):07d}", "member_external_id": who.external_id,
            "placed_at": placed_at, "total": Decimal(total), "status": "paid"}
    if category:
        data["lines"] = [{"sku": "S-" + category, "category": category, "quantity": 1,
                          "unit_price": Decimal(total), "amount": Decimal(total)}]
    _outcomes, errors = members.ingest_orders(brand.tenant, [(0, data)])
    assert not errors, errors


def full_run(brand, as_of):
    """A full lifecycle run: every member is scored and gets a StageChange row."""
    return lifecycle.score_full(brand.tenant, as_of)


def campaign(brand, steps, **fields):
    defaults = {"name": "新客欢迎", "status": Campaign.Status.ACTIVE, "trigger": "stage_entered",
                "trigger_stage": "introduction"}
    defaults.update(fields)
    made = Campaign.objects.create(tenant=brand.tenant, **defaults)
    for position, step in enumerate(steps):
        Step.objects.create(tenant=brand.tenant, campaign=made, position=position, **step)
    return made


def template(brand, **fields):
    defaults = {"name": "新客券 ¥66", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("66.00"),
                "threshold": Decimal("0"), "validity": CouponTemplate.Validity.DAYS, "valid_days": 90}
    defaults.update(fields)
    made = CouponTemplate(tenant=brand.tenant, **defaults)
    made.full_clean(exclude=["tenant"])
    made.save()
    return made
