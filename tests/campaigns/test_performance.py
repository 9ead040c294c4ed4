"""Guide and store performance with commission (业绩分佣): a worked example, roles, the similar-members
flag, parameters, isolation and a bounded number of queries."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import reports, services
from campaigns.models import GuideTask, OutreachSettings
from members import services as members
from members.models import Member
from scrm.models import Staff
from scrm.services import create_staff
from tests.api_cases import assert_error

from .helpers import T0, campaign, full_run, many_members, member

pytestmark = pytest.mark.django_db

TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好"}
PERIOD = {"since": "2026-03-01", "until": "2026-03-31"}


def buy(brand, who, placed_at, total, refunded="0", status="paid"):
    data = {"external_id": f"P{who.pk}-{placed_at:%m%d%H%M}-{total}", "member_external_id": who.external_id,
            "placed_at": placed_at, "total": Decimal(total), "refunded_amount": Decimal(refunded), "status": status}
    _outcomes, errors = members.ingest_orders(brand.tenant, [(0, data)])
    assert not errors, errors


def outcome(who, status):
    task = GuideTask.objects.get(member=who)
    services.record_outcome(task, status, T0 + timedelta(hours=5))


@pytest.fixture
def example(brand):
    """Two guides of one store with three members each, all given a task at T0; 5% commission."""
    brand.guide3 = create_staff(brand.tenant, "acme_guide3", "pw-12345678", "导购丙", Staff.Role.GUIDE, [brand.store])
    with brand.scope():
        OutreachSettings.objects.create(tenant=brand.tenant, commission_rate=Decimal("5.00"))
        a1, a2, a3 = (member(brand, name=f"甲{i}", owner_guide=brand.guide) for i in range(3))
        b1, b2, b3 = (member(brand, name=f"丙{i}", owner_guide=brand.guide3) for i in range(3))
        campaign(brand, [TASK])
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.run_due_steps(brand.tenant, T0)
        outcome(a1, "replied")
        outcome(a2, "sent")
        outcome(b1, "bought")
        buy(brand, a1, T0 + timedelta(days=2), "300.00", refunded="100.00", status="partially_refunded")
        buy(brand, a1, T0 + timedelta(days=3), "150.00", refunded="150.00", status="refunded")
        buy(brand, a2, T0 + timedelta(days=10), "500.00")  # after the 7-day window
        buy(brand, a3, T0 - timedelta(hours=1), "80.00")  # before the touch
        buy(brand, b1, T0 + timedelta(days=1), "1000.00")
    return brand


def rows_by_name(response):
    assert response.status_code == 200, response.content
    return {row["name"]: row for row in response.json()["results"]}


def test_the_worked_example_credits_orders_inside_the_window_net_of_refunds_with_the_commission(example):
    answer = example.api().get("/api/v1/guide-performance/", PERIOD)
    rows = rows_by_name(answer)
    jia, bing = rows["导购甲"], rows["导购丙"]
    # 甲: 300 - 100 refunded inside the window; the refunded order, the one after the window and the one
    # before the touch count for nothing. 5% of 200 = 10.
    assert (jia["orders"], jia["sales"], jia["commission"]) == (1, "200.00", "10.00")
    assert (bing["orders"], bing["sales"], bing["commission"]) == (1, "1000.00", "50.00")
    assert (jia["members"], jia["tasks_assigned"], jia["tasks_done"]) == (3, 3, 2)
    assert (jia["reply_rate"], jia["conversion_rate"]) == (0.3333, 0.3333)
    assert (bing["tasks_done"], bing["reply_rate"], bing["conversion_rate"]) == (1, 0.3333, 0.3333)
    assert answer.json()["commission_rate"] == "5.00"
    assert [row["name"] for row in answer.json()["results"]][:2] == ["导购丙", "导购甲"]  # by sales, highest first


def test_the_store_report_adds_up_its_guides(example):
    rows = rows_by_name(example.api().get("/api/v1/store-performance/", PERIOD))
    store = rows[example.store.name]
    assert (store["guides"], store["members"], store["orders"], store["sales"], store["commission"]) == (
        2, 6, 2, "1200.00", "60.00"
    )
    assert rows[example.store2.name]["sales"] == "0.00"


def test_orders_outside_the_period_are_not_counted(example):
    rows = rows_by_name(example.api().get("/api/v1/guide-performance/", {"since": "2026-03-04", "until": "2026-03-31"}))
    # Both attributed orders were placed on March 3 or 4 (Shanghai): only 甲's (the 4th) is left; no task was given.
    assert (rows["导购甲"]["orders"], rows["导购丙"]["orders"], rows["导购甲"]["tasks_assigned"]) == (1, 0, 0)


def test_a_store_manager_sees_the_stores_guides_and_a_guide_only_themselves(example):
    manager = rows_by_name(example.session(example.manager).get("/api/v1/guide-performance/", PERIOD))
    assert set(manager) == {"导购甲", "导购丙"}
    guide = rows_by_name(example.session(example.guide).get("/api/v1/guide-performance/", PERIOD))
    assert set(guide) == {"导购甲"}
    operator = rows_by_name(example.session(example.operator).get("/api/v1/guide-performance/", PERIOD))
    assert set(operator) == {"导购甲", "导购乙", "导购丙"}
    assert example.session(example.guide).get("/api/v1/store-performance/").status_code == 403
    stores = rows_by_name(example.session(example.manager).get("/api/v1/store-performance/", PERIOD))
    assert set(stores) == {example.store.name}


def test_a_guide_with_similar_members_who_sold_far_less_is_flagged(brand):
    brand.guide3 = create_staff(brand.tenant, "acme_guide3", "pw-12345678", "导购丙", Staff.Role.GUIDE, [brand.store])
    brand.guide4 = create_staff(brand.tenant, "acme_guide4", "pw-12345678", "导购丁", Staff.Role.GUIDE, [brand.store])
    with brand.scope():
        many_members(brand, 12, owner_guide=brand.guide)
        many_members(brand, 11, owner_guide=brand.guide3)
        many_members(brand, 20, owner_guide=brand.guide4)  # not similar: 20 against 11 and 12
        campaign(brand, [TASK])
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.run_due_steps(brand.tenant, T0)
        # Five buyers each, so the stage mix stays alike whenever the buyers are re-scored: 1000 against 300.
        for who in Member.objects.filter(owner_guide=brand.guide)[:5]:
            buy(brand, who, T0 + timedelta(days=1), "200.00")
        for who in Member.objects.filter(owner_guide=brand.guide3)[:5]:
            buy(brand, who, T0 + timedelta(days=1), "60.00")
    rows = rows_by_name(brand.api().get("/api/v1/guide-performance/", PERIOD))
    assert rows["导购丙"]["sales_gap"] == {"peer_id": brand.guide.pk, "peer_name": "导购甲", "peer_sales": "1000.00"}
    assert rows["导购甲"]["sales_gap"] is None
    assert rows["导购丁"]["sales_gap"] is None
    page = brand.session(brand.operator).get("/campaigns/performance/", {"since": "2026-03-01", "until": "2026-03-31"})
    html = page.content.decode()
    assert html.count('data-testid="sales-gap"') == 1 and "导购甲" in html


def test_a_twofold_gap_over_a_handful_of_orders_is_not_flagged():
    def guide(pk, orders, sales):
        return {"id": pk, "name": str(pk), "members": 50, "active_members": 10, "orders": orders,
                "sales": Decimal(sales), "stores": [{"id": 1}], "sales_gap": None}

    few = [guide(1, 4, "4000"), guide(2, 1, "500")]
    reports._flag_sales_gaps(few)
    assert few[1]["sales_gap"] is None
    enough = [guide(1, 5, "4000"), guide(2, 1, "500")]
    reports._flag_sales_gaps(enough)
    assert enough[1]["sales_gap"]["peer_id"] == 1 and enough[0]["sales_gap"] is None


def test_similar_means_counts_within_a_fifth_and_a_close_stage_mix():
    def guide(n, buying):
        return {"members": n, "active_members": buying}

    assert reports.similar(guide(100, 30), guide(85, 30))
    assert not reports.similar(guide(100, 30), guide(79, 24))
    assert not reports.similar(guide(100, 50), guide(100, 30))  # 50% against 30% in growth and maturity
    assert not reports.similar(guide(9, 0), guide(9, 0))  # too few members to judge


def test_bad_parameters_get_an_error_naming_the_parameter(brand, other_brand):
    client = brand.api()
    assert_error(client.get("/api/v1/guide-performance/", {"since": "2026-04-01", "until": "2026-03-01"}), 400, "since")
    assert_error(client.get("/api/v1/guide-performance/", {"since": "March"}), 400, "since")
    assert_error(client.get("/api/v1/guide-performance/", {"since": "2024-01-01", "until": "2026-01-01"}), 400, "since")
    assert_error(client.get("/api/v1/guide-performance/", {"ordering": "salary"}), 400, "ordering")
    assert_error(client.get("/api/v1/store-performance/", {"store_id": other_brand.store.pk}), 400, "store_id")


def test_another_brand_sees_none_of_the_figures(example, other_brand):
    rows = rows_by_name(other_brand.api().get("/api/v1/guide-performance/", PERIOD))
    assert set(rows) == {"导购甲", "导购乙"} and all(r["sales"] == "0.00" for r in rows.values())
    assert {r["id"] for r in other_brand.api().get("/api/v1/guide-performance/").json()["results"]}.isdisjoint(
        {example.guide.pk, example.guide3.pk}
    )
    stores = rows_by_name(other_brand.api().get("/api/v1/store-performance/", PERIOD))
    assert example.store.name not in stores
    page = other_brand.session(other_brand.operator).get("/campaigns/performance/", PERIOD)
    assert page.status_code == 200 and "导购丙" not in page.content.decode()
    assert other_brand.session(other_brand.operator).get(
        "/campaigns/performance/", {"store_id": example.store.pk}
    ).content.decode().count("is-invalid") == 1


def test_the_page_shows_the_table_and_exports_csv(example):
    client = example.session(example.operator)
    page = client.get("/campaigns/performance/", {**PERIOD, "ordering": "commission"})
    table = page.content.decode().split('data-testid="performance-table"')[1]
    assert page.status_code == 200 and "¥50.00" in table and "¥10.00" in table
    assert table.index("导购甲") < table.index("导购丙")  # lowest commission first, as asked
    stores = client.get("/campaigns/performance/", {**PERIOD, "view": "stores"}).content.decode()
    assert "¥1,200.00" in stores
    export = client.get("/campaigns/performance/", {**PERIOD, "export": "csv"})
    assert export["Content-Type"].startswith("text/csv")
    lines = export.content.decode("utf-8-sig").splitlines()
    assert lines[1].startswith("导购丙,3,3,1,") and lines[1].split(",")[7:9] == ["1000.00", "50.00"]
    mine = example.session(example.guide).get("/campaigns/performance/", {**PERIOD, "view": "stores"}).content.decode()
    assert "导购丙" not in mine and "¥10.00" in mine


def test_the_api_list_takes_the_same_number_of_queries_for_few_and_many_guides(brand):
    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert brand.api().get("/api/v1/guide-performance/", PERIOD).status_code == 200
        return len(ctx.captured_queries)

    count_queries()  # the first request of a key also records when it was last used
    few = count_queries()
    for i in range(8):
        create_staff(brand.tenant, f"acme_extra{i}", "pw-12345678", f"导购{i}", Staff.Role.GUIDE, [brand.store, brand.store2])
    with brand.scope():
        many_members(brand, 5, owner_guide=brand.guide)
    assert count_queries() == few <= 12


def test_the_commission_rate_is_set_on_the_settings_page(brand):
    client = brand.session(brand.owner)
    base = {"max_touches": "2", "per_days": "7", "quiet_start": "21:00", "quiet_end": "09:00", "dont_disturb_days": "7",
            "attribution_days": "7", "wecom_api_base": "https://qyapi.weixin.qq.com"}
    refused = client.post("/campaigns/settings/", {**base, "commission_rate": "150"}, HTTP_ACCEPT_LANGUAGE="en")
    field = re.search(r'<input[^>]*name="commission_rate"[^>]*>', refused.content.decode()).group(0)
    assert refused.status_code == 200 and "is-invalid" in field
    assert client.post("/campaigns/settings/", {**base, "commission_rate": "4.5"}).status_code == 302
    assert brand.api().get("/api/v1/guide-performance/").json()["commission_rate"] == "4.50"
