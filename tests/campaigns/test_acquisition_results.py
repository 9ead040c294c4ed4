"""Acquisition results: a worked example checked by hand, the leaderboard, the page, the partial and the API."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from campaigns import acquisition_queries as queries
from campaigns.models import LiveCode, LiveCodeDay, LiveCodeJoin
from members import services as members
from members.models import Order
from tests.api_cases import assert_error

from .helpers import at, member, order

pytestmark = pytest.mark.django_db

AS_OF = at("2026-03-02 10:00")
PERIOD = (date(2026, 1, 1), date(2026, 3, 2))


def code(brand, name, channel, cost=None, store=None):
    return LiveCode.objects.create(tenant=brand.tenant, name=name, channel_type=channel, cost=cost, store=store)


def join(brand, live_code, who, joined_at, guide=None, store=None):
    return LiveCodeJoin.objects.create(
        tenant=brand.tenant, live_code=live_code, member=who, guide=guide or who.owner_guide,
        store=store or who.home_store, door=LiveCodeJoin.Door.WECOM, key=f"test:{live_code.pk}:{who.pk}",
        joined_at=joined_at, new_member=True,
    )


def deleted(brand, who, when):
    """The customer deletes the guide, recorded as the WeCom callback records it."""
    _outcomes, errors = members.ingest_events(brand.tenant, [(0, {
        "external_id": f"del-{who.external_id}", "member_external_id": who.external_id, "type": "contact_deleted",
        "occurred_at": when, "properties": {"userid": "g1", "by": "customer"},
    })])
    assert not errors


@pytest.fixture
def worked(brand):
    """Two codes. Cashier (¥100, five joins ever, four in the period), parcel card (¥90, two joins).

    cashier  A1 joined 01-10, stays, bought 01-20           -> kept 7 and 30, converted
             A2 joined 01-15, deleted the guide 01-18        -> lost before 7 (and 30)
             A3 joined 02-10 (20 days old), refunded order   -> kept 7, too young for 30, not converted
             A4 joined 02-27 (3 days old), bought 02-28      -> too young for 7 and 30, converted
             A0 joined 2025-12-20: outside the period, but shares the code's cost
    parcel   B1 joined 01-05, deleted 01-25 (day 20), bought 02-20 (day 46) -> kept 7, lost 30, not converted
             B2 joined 01-05, bought 01-06                   -> kept, converted
    """
    with brand.scope():
        cashier = code(brand, "收银台", LiveCode.ChannelType.STORE_CASHIER, Decimal("100.00"), brand.store)
        parcel = code(brand, "包裹卡", LiveCode.ChannelType.PARCEL_CARD, Decimal("90.00"))
        people = {}
        for name, joined in (("A0", "2025-12-20 10:00"), ("A1", "2026-01-10 10:00"), ("A2", "2026-01-15 10:00"),
                             ("A3", "2026-02-10 10:00"), ("A4", "2026-02-27 10:00")):
            people[name] = member(brand, name=name, joined_at=at(joined))
            join(brand, cashier, people[name], at(joined))
        for name in ("B1", "B2"):
            people[name] = member(brand, name=name, joined_at=at("2026-01-05 12:00"), owner_guide=brand.guide2,
                                  home_store=brand.store2)
            join(brand, parcel, people[name], at("2026-01-05 12:00"))
        order(brand, people["A1"], at("2026-01-20 15:00"))
        deleted(brand, people["A2"], at("2026-01-18 09:00"))
        order(brand, people["A3"], at("2026-02-12 15:00"))
        Order.objects.filter(member=people["A3"]).update(status=Order.Status.REFUNDED, refunded_amount=Decimal("199.00"))
        order(brand, people["A4"], at("2026-02-28 15:00"))
        deleted(brand, people["B1"], at("2026-01-25 12:00"))
        order(brand, people["B1"], at("2026-02-20 12:00"))
        order(brand, people["B2"], at("2026-01-06 12:00"))
        LiveCodeDay.objects.create(tenant=brand.tenant, live_code=cashier, day=date(2026, 1, 10), views=30)
        LiveCodeDay.objects.create(tenant=brand.tenant, live_code=parcel, day=date(2026, 1, 5), views=50)
        LiveCodeDay.objects.create(tenant=brand.tenant, live_code=cashier, day=date(2025, 12, 20), views=100)
    return {"cashier": cashier, "parcel": parcel, **people}



def figures(brand, group, **kwargs):
    with brand.scope(), translation.override("en"):
        return queries.results(brand.tenant, queries.Params(group, *PERIOD, **kwargs), AS_OF)


def test_the_worked_example_gives_the_hand_counted_figures_per_channel(brand, worked):
    result = figures(brand, "channel_type")
    rows = {r["key"]: r for r in result["rows"]}
    assert [r["key"] for r in result["rows"]] == ["store_cashier", "parcel_card"]
    cashier, parcel = rows["store_cashier"], rows["parcel_card"]
    assert cashier["label"] == "Store cashier" and cashier["views"] == 30 and cashier["joins"] == 4
    assert (cashier["retained_7"], cashier["eligible_7"], cashier["retention_7"]) == (2, 3, 0.6667)
    assert (cashier["retained_30"], cashier["eligible_30"], cashier["retention_30"]) == (1, 2, 0.5)
    assert (cashier["converted"], cashier["conversion"]) == (2, 0.5)
    assert cashier["cost"] == Decimal("80.00")  # ¥100 over five joins ever, four of them in the period
    assert cashier["cost_per_join"] == Decimal("20.00") and cashier["cost_per_converted"] == Decimal("40.00")
    assert parcel["views"] == 50 and parcel["joins"] == 2
    assert (parcel["retention_7"], parcel["retention_30"], parcel["conversion"]) == (1.0, 0.5, 0.5)
    assert (parcel["cost"], parcel["cost_per_join"], parcel["cost_per_converted"]) == (
        Decimal("90.00"), Decimal("45.00"), Decimal("90.00"))
    totals = result["totals"]
    assert (totals["views"], totals["joins"], totals["converted"]) == (80, 6, 3)
    assert (totals["retention_7"], totals["retention_30"]) == (0.8, 0.5)
    assert totals["cost_per_join"] == Decimal("28.33") and totals["cost_per_converted"] == Decimal("56.67")


def test_the_days_of_the_period_carry_the_joins_and_conversions_of_each_local_day(brand, worked):
    result = figures(brand, "live_code")
    days = {d["day"]: d for d in result["days"]}
    assert len(result["days"]) == (PERIOD[1] - PERIOD[0]).days + 1
    assert (days[date(2026, 1, 5)]["joins"], days[date(2026, 1, 5)]["converted"], days[date(2026, 1, 5)]["views"]) == (2, 1, 50)
    assert days[date(2026, 1, 10)]["joins"] == 1 and days[date(2026, 1, 11)]["joins"] == 0
    cashier = next(r for r in result["rows"] if r["key"] == worked["cashier"].pk)
    assert cashier["label"] == "收银台"
    assert [(d["day"], d["joins"]) for d in cashier["days"]] == [
        (date(2026, 1, 10), 1), (date(2026, 1, 15), 1), (date(2026, 2, 10), 1), (date(2026, 2, 27), 1)]


def test_a_late_evening_join_counts_on_the_brands_local_day(brand, worked):
    with brand.scope():
        late = member(brand, name="夜猫子", joined_at=at("2026-02-01 23:30"))
        join(brand, worked["cashier"], late, at("2026-02-01 23:30"))
    days = {d["day"]: d["joins"] for d in figures(brand, "store")["days"]}
    assert days[date(2026, 2, 1)] == 1 and days[date(2026, 2, 2)] == 0


def test_guides_and_stores_group_the_same_joins(brand, worked):
    by_guide = {r["key"]: r for r in figures(brand, "guide")["rows"]}
    assert by_guide[brand.guide.pk]["joins"] == 4 and by_guide[brand.guide2.pk]["joins"] == 2
    assert by_guide[brand.guide.pk]["views"] == 0  # views belong to codes, not guides
    by_store = {r["key"]: r for r in figures(brand, "store")["rows"]}
    assert by_store[brand.store.pk]["label"] == brand.store.name and by_store[brand.store2.pk]["joins"] == 2


def test_one_live_code_alone(brand, worked):
    result = figures(brand, "live_code", live_code_id=worked["parcel"].pk)
    assert [r["key"] for r in result["rows"]] == [worked["parcel"].pk] and result["totals"]["joins"] == 2


def test_the_leaderboard_ranks_by_joins_then_7_day_retention(brand):
    now = AS_OF
    with brand.scope():
        cashier = code(brand, "收银台", LiveCode.ChannelType.STORE_CASHIER)
        for guide, store, lose in ((brand.guide, brand.store, True), (brand.guide2, brand.store2, False)):
            for i in range(2):
                who = member(brand, owner_guide=guide, home_store=store, joined_at=now - timedelta(days=20))
                join(brand, cashier, who, now - timedelta(days=20))
                if lose and i == 0:
                    deleted(brand, who, now - timedelta(days=19))
        third = member(brand, owner_guide=brand.manager, home_store=brand.store, joined_at=now - timedelta(days=3))
        join(brand, cashier, third, now - timedelta(days=3))
        board = queries.leaderboard(brand.tenant, date(2026, 2, 1), date(2026, 3, 2), now)
    assert [(r["rank"], r["key"]) for r in board["guides"]] == [
        (1, brand.guide2.pk), (2, brand.guide.pk), (3, brand.manager.pk)]
    assert board["guides"][0]["retention_7"] == 1.0 and board["guides"][1]["retention_7"] == 0.5
    assert [r["key"] for r in board["stores"]] == [brand.store.pk, brand.store2.pk]


# ---------------------------------------------------------------- the page, the partial and the API

@pytest.fixture
def recent(brand):
    """Joins relative to the real clock, for the page and the API (which read now)."""
    now = timezone.now()
    with brand.scope():
        cashier = code(brand, "南京西路收银台", LiveCode.ChannelType.STORE_CASHIER, Decimal("50.00"), brand.store)
        mine = member(brand, name="林晓", joined_at=now - timedelta(days=10))
        join(brand, cashier, mine, now - timedelta(days=10))
        theirs = member(brand, name="周敏", owner_guide=brand.guide2, home_store=brand.store2, joined_at=now - timedelta(days=2))
        join(brand, cashier, theirs, now - timedelta(days=2), store=brand.store2)
        LiveCodeDay.objects.create(tenant=brand.tenant, live_code=cashier, day=timezone.localdate(now, brand.tenant.zone), views=12)
    return {"cashier": cashier}


def test_the_page_shows_totals_the_chart_data_the_table_and_the_leaderboard(brand, recent):
    page = brand.session(brand.operator).get("/campaigns/acquisition/?days=30&group=live_code")
    html = page.content.decode()
    assert page.status_code == 200
    assert page.context["figures"]["totals"]["joins"] == 2 and "南京西路收银台" in html
    assert 'id="acquisition-chart-data"' in html and 'data-testid="store-board"' in html
    assert sum(page.context["chart"]["joins"]) == 2 and len(page.context["chart"]["labels"]) == 30


def test_a_bad_period_on_the_page_says_why_and_shows_the_last_30_days(brand, recent):
    page = brand.session(brand.operator).get("/campaigns/acquisition/?start=2026-03-10&end=2026-03-01")
    assert page.status_code == 200 and "end" in page.context["errors"]
    assert 'data-testid="period-errors"' in page.content.decode()
    assert page.context["figures"]["totals"]["joins"] == 2


def test_a_guide_sees_only_their_own_joins(brand, recent):
    page = brand.session(brand.guide2).get("/campaigns/acquisition/")
    assert page.context["figures"]["totals"]["joins"] == 1 and page.context["figures"]["totals"]["views"] == 0
    manager = brand.session(brand.manager).get("/campaigns/acquisition/")
    assert manager.context["figures"]["totals"]["joins"] == 1


def test_the_live_code_partial_loads_its_figures_and_another_brands_code_is_a_404(brand, other_brand, recent):
    client = brand.session(brand.operator)
    fragment = client.get(f"/campaigns/acquisition/live-codes/{recent['cashier'].pk}/")
    assert fragment.status_code == 200 and fragment.context["totals"]["joins"] == 2
    assert fragment.context["totals"]["cost_per_join"] == Decimal("25.00")
    assert other_brand.session(other_brand.operator).get(f"/campaigns/acquisition/live-codes/{recent['cashier'].pk}/").status_code == 404


def test_the_api_answers_rows_days_totals_and_the_leaderboard(brand, recent):
    answer = brand.api().get("/api/v1/acquisition/", {"group": "store"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["group"] == "store" and body["totals"]["joins"] == 2 and body["totals"]["cost_per_join"] == "25.00"
    assert {r["key"] for r in body["rows"]} == {brand.store.pk, brand.store2.pk}
    assert len(body["days"]) == 30 and {"stores", "guides"} == set(body["leaderboard"])


@pytest.mark.parametrize("params, field", [
    ({"group": "weather"}, "group"),
    ({"start": "2026-13-01"}, "start"),
    ({"start": "2026-03-10", "end": "2026-03-01"}, "end"),
    ({"start": "2024-01-01", "end": "2026-01-01"}, "end"),
    ({"live_code": "999999"}, "live_code"),
])
def test_the_api_names_the_bad_parameter(brand, params, field):
    assert_error(brand.api().get("/api/v1/acquisition/", params), 400, field)


def test_another_brands_api_key_sees_none_of_these_joins_nor_their_code(brand, other_brand, recent):
    answer = other_brand.api().get("/api/v1/acquisition/")
    assert answer.status_code == 200 and answer.json()["totals"]["joins"] == 0
    assert_error(other_brand.api().get("/api/v1/acquisition/", {"live_code": recent["cashier"].pk}), 400, "live_code")
    assert other_brand.session(other_brand.operator).get("/campaigns/acquisition/").context["figures"]["totals"]["joins"] == 0
