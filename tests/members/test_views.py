"""The members pages of the dashboard: the list with filters and search, and the 360° page."""
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members import views
from members.services import ingest_events, ingest_orders, upsert_members

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=dt_timezone.utc)


def add_members(brand, rows):
    """rows: dicts with external_id and optional fields; stores/guides as objects."""
    with brand.scope():
        outcomes, errors = upsert_members(brand.tenant, list(enumerate(rows)))
    assert not errors
    return {o["external_id"]: o["id"] for o in outcomes.values()}


def member(external_id, name, mobile, store, guide, joined=T0, **extra):
    return {"external_id": external_id, "name": name, "mobile": mobile, "home_store": store,
            "owner_guide": guide, "joined_at": joined, **extra}


@pytest.fixture
def people(brand):
    return add_members(brand, [
        member("M1", "林晓", "13800138001", brand.store, brand.guide),
        member("M2", "周敏", "13900139002", brand.store2, brand.guide2, joined=T0 + timedelta(days=1)),
        member("M3", "林芳", "13700137003", brand.store, brand.guide, contact_status="deleted_by_customer"),
    ])


def test_the_members_list_sends_an_anonymous_visitor_to_sign_in(client, brand):
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_members_list_shows_name_masked_mobile_store_guide_and_contact_status(brand, people):
    page = brand.session(brand.operator).get("/members/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "林晓" in page and "周敏" in page
    assert "138****8001" in page
    assert "13800138001" not in page
    assert brand.store2.name in page and "导购乙" in page
    assert "Deleted by customer" in page


def test_search_finds_a_member_by_name_prefix_full_mobile_or_last_four_digits(brand, people):
    client = brand.session(brand.operator)
    for query in ("林", "13900139002", "9002"):
        page = client.get("/members/", {"q": query}).content.decode()
        expected = {"林": {"林晓", "林芳"}, "13900139002": {"周敏"}, "9002": {"周敏"}}[query]
        for name in {"林晓", "林芳", "周敏"}:
            assert (name in page) == (name in expected), (query, name)


def test_filters_from_the_filterset_narrow_the_list(brand, people):
    client = brand.session(brand.operator)
    page = client.get("/members/", {"store_id": brand.store2.pk}).content.decode()
    assert "周敏" in page and "林晓" not in page
    page = client.get("/members/", {"contact_status": "deleted_by_customer"}).content.decode()
    assert "林芳" in page and "林晓" not in page
    page = client.get("/members/", {"joined_after": "2025-03-02"}).content.decode()
    assert "周敏" in page and "林晓" not in page


def test_a_filter_value_that_is_not_valid_is_reported_instead_of_listing_everyone(brand, people):
    page = brand.session(brand.operator).get(
        "/members/", {"joined_after": "not-a-date"}, HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "林晓" not in page
    assert "some values are not valid" in page


def test_a_guide_lists_only_their_own_members(brand, people):
    page = brand.session(brand.guide).get("/members/").content.decode()
    assert "林晓" in page and "林芳" in page
    assert "周敏" not in page


def test_a_store_manager_lists_their_stores_members(brand, people):
    page = brand.session(brand.manager).get("/members/").content.decode()
    assert "林晓" in page and "周敏" not in page


def test_the_list_pages_forward_without_counting_every_member(brand, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 5)
    add_members(brand, [
        member(f"P{i:02d}", f"会员{i:02d}", None, brand.store, brand.guide, joined=T0 + timedelta(hours=i))
        for i in range(7)
    ])
    client = brand.session(brand.operator)
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/members/").content.decode()
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "会员06" in first and "会员02" in first and "会员01" not in first
    assert "page=2" in first
    second = client.get("/members/", {"page": 2}).content.decode()
    assert "会员01" in second and "会员00" in second and "会员02" not in second
    assert "page=3" not in second


def test_the_list_runs_the_same_number_of_queries_for_few_or_many_members(brand):
    client = brand.session(brand.operator)
    add_members(brand, [member(f"A{i}", f"甲{i}", None, brand.store, brand.guide) for i in range(2)])
    with CaptureQueriesContext(connection) as few:
        client.get("/members/")
    add_members(brand, [member(f"B{i}", f"乙{i}", None, brand.store2, brand.guide2) for i in range(20)])
    with CaptureQueriesContext(connection) as many:
        client.get("/members/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_an_htmx_search_answers_only_the_results_table(brand, people):
    response = brand.session(brand.operator).get(
        "/members/", {"q": "周"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="member-results"
    )
    page = response.content.decode()
    assert "<html" not in page
    assert 'data-testid="member-table"' in page and "周敏" in page


@pytest.fixture
def shopper(brand, people):
    with brand.scope():
        outcomes, errors = ingest_orders(brand.tenant, [(0, {
            "external_id": "ORD-9", "member_external_id": "M1", "store": brand.store, "guide": brand.guide,
            "placed_at": T0 + timedelta(days=3), "status": "paid", "total": Decimal("1234.50"),
            "discount": Decimal("0"), "refunded_amount": Decimal("0"),
            "lines": [{"sku": "SKU-1", "name": "羊毛大衣", "category": "外套", "quantity": 1,
                       "unit_price": Decimal("1234.50"), "amount": Decimal("1234.50")}],
        })])
        assert not errors
        _out, errors = ingest_events(brand.tenant, [(0, {
            "member_external_id": "M1", "type": "coupon_claimed", "occurred_at": T0 + timedelta(days=2),
            "properties": {"coupon": "新人礼"}, "external_id": "EV-1",
        })])
        assert not errors
    return people["M1"]


def test_the_360_page_shows_profile_orders_with_lines_and_the_timeline(brand, shopper):
    page = brand.session(brand.operator).get(f"/members/{shopper}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "林晓" in page and "138****8001" in page and brand.store.name in page
    assert "ORD-9" in page and "羊毛大衣" in page and "SKU-1" in page
    assert "¥1,234.50" in page
    assert "Claimed a coupon" in page and "新人礼" in page


def test_the_360_page_shows_times_in_the_brands_time_zone(brand, shopper):
    client = brand.session(brand.operator)
    page = client.get(f"/members/{shopper}/").content.decode()
    assert "2025-03-01 10:00" in page  # joined 02:00 UTC is 10:00 in Shanghai
    brand.tenant.time_zone = "America/New_York"
    brand.tenant.save()
    page = client.get(f"/members/{shopper}/").content.decode()
    assert "2025-02-28 21:00" in page


def test_older_orders_and_events_load_in_pages(brand, shopper, monkeypatch):
    monkeypatch.setattr(views, "ORDERS_PAGE", 1)
    monkeypatch.setattr(views, "EVENTS_PAGE", 1)
    with brand.scope():
        ingest_orders(brand.tenant, [(0, {
            "external_id": "ORD-OLD", "member_external_id": "M1", "placed_at": T0, "status": "paid",
            "total": Decimal("10.00"), "discount": Decimal("0"), "refunded_amount": Decimal("0"), "lines": [],
        })])
        ingest_events(brand.tenant, [(0, {
            "member_external_id": "M1", "type": "sign_in", "occurred_at": T0, "properties": {}, "external_id": "EV-0",
        })])
    client = brand.session(brand.operator)
    page = client.get(f"/members/{shopper}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "ORD-9" in page and "ORD-OLD" not in page and f"/members/{shopper}/orders/?offset=1" in page
    older = client.get(f"/members/{shopper}/orders/", {"offset": 1}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "ORD-OLD" in older and "ORD-9" not in older
    earlier = client.get(f"/members/{shopper}/events/", {"offset": 1}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Signed in" in earlier and "Claimed a coupon" not in earlier


def test_a_guide_opens_their_own_member_but_not_another_guides(brand, people):
    assert brand.session(brand.guide).get(f"/members/{people['M1']}/").status_code == 200
    assert brand.session(brand.guide).get(f"/members/{people['M2']}/").status_code == 404
    assert brand.session(brand.guide).get(f"/members/{people['M2']}/orders/").status_code == 404
    assert brand.session(brand.guide).get(f"/members/{people['M2']}/events/").status_code == 404


def test_another_brands_member_is_not_found(brand, other_brand, people):
    client = other_brand.session(other_brand.owner)
    for path in ("", "orders/", "events/"):
        assert client.get(f"/members/{people['M1']}/{path}").status_code == 404
    assert "林晓" not in client.get("/members/", {"q": "林"}).content.decode()
