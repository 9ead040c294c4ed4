from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.services import ingest_orders, upsert_members

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=SHANGHAI)


def add_members(brand, rows):
    """Create members through the ingestion service; ``rows`` are dicts of member fields."""
    items = []
    for index, row in enumerate(rows):
        data = {"external_id": row.get("external_id", f"M{index:05d}"), "joined_at": AS_OF - timedelta(days=400)}
        data.update(row)
        items.append((index, data))
    with brand.scope():
        outcomes, errors = upsert_members(brand.tenant, items)
    assert not errors, errors
    return [outcomes[i]["id"] for i in range(len(items))]


def add_orders(brand, rows):
    items = []
    for index, row in enumerate(rows):
        data = {"external_id": f"O{index:05d}-{row['member_external_id']}", "total": Decimal("100.00"),
                "placed_at": AS_OF - timedelta(days=10)}
        data.update(row)
        items.append((index, data))
    with brand.scope():
        _outcomes, errors = ingest_orders(brand.tenant, items)
    assert not errors, errors


@pytest.fixture
def members(in_brand):
    return add_members(in_brand, [{"external_id": f"M{i:05d}", "name": f"会员{i}"} for i in range(6)])
