from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from members.services import upsert_members
from coupons.models import CouponTemplate

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text):
    """An aware time in Shanghai: at("2026-03-01 23:59:59")."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def make_members(brand, count, prefix="M", **fields):
    """Members made through the ingestion service; returns their ids in order."""
    items = [
        (i, {"external_id": f"{prefix}{i:04d}", "name": f"会员{i}", "joined_at": at("2026-01-01 10:00"), **fields})
        for i in range(count)
    ]
    with brand.scope():
        outcomes, errors = upsert_members(brand.tenant, items)
    assert not errors, errors
    return [outcomes[i]["id"] for i in range(count)]


def make_template(brand, **fields):
    defaults = {
        "name": "新客券 ¥66", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("66.00"),
        "threshold": Decimal("0"), "validity": CouponTemplate.Validity.DAYS, "valid_days": 90,
    }
    defaults.update(fields)
    stores = defaults.pop("stores", None)
    with brand.scope():
        template = CouponTemplate(tenant=brand.tenant, **defaults)
        template.full_clean(exclude=["tenant"])
        template.save()
        if stores:
            template.stores.set(stores)
    return template
