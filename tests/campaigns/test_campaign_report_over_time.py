"""A campaign's results per variant and local day: on the detail page's chart and in its API report."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import reports, services
from campaigns.models import GuideTask
from members import services as members

from .helpers import T0, campaign, full_run, member

pytestmark = pytest.mark.django_db

TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好"}


@pytest.fixture
def ran(brand):
    """Four members enrolled and given a task on March 2; one replies on the 3rd, one buys on the 4th."""
    with brand.scope():
        people = [member(brand, name=f"会员{i}") for i in range(4)]
        made = campaign(brand, [TASK], variants=[{"key": "A", "label": "短信券", "weight": 50},
                                                   {"key": "B", "label": "导购关怀", "weight": 50}])
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.run_due_steps(brand.tenant, T0)
        services.record_outcome(GuideTask.objects.get(member=people[0]), "replied", T0 + timedelta(days=1))
        data = {"external_id": "O-1", "member_external_id": people[1].external_id, "placed_at": T0 + timedelta(days=2),
                "total": Decimal("199.00"), "status": "paid"}
        assert not members.ingest_orders(brand.tenant, [(0, data)])[1]
    brand.campaign, brand.people = made, people
    return brand


def totals(series, metric):
    return [sum(day) for day in zip(*(v[metric] for v in series["variants"]))]


def test_each_figure_lands_on_its_local_day(ran):
    with ran.scope():
        series = reports.campaign_over_time(ran.campaign, ran.tenant, T0 + timedelta(days=5))
    assert series["days"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert totals(series, "enrolled") == [4, 0, 0]
    assert totals(series, "touched") == [4, 0, 0]
    assert totals(series, "replied") == [0, 1, 0]
    assert totals(series, "converted") == [0, 0, 1]
    assert {v["label"] for v in series["variants"]} <= {"短信券", "导购关怀"}
    assert sum(sum(v["enrolled"]) for v in series["variants"]) == 4


def test_the_api_report_has_the_variants_and_the_days(ran):
    answer = ran.api().get(f"/api/v1/campaign-reports/{ran.campaign.pk}/")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert sum(arm["enrolled"] for arm in body["arms"]) == 4 and body["verdict"]
    assert "2026-03-02" in body["over_time"]["days"]
    assert sum(sum(v["converted"]) for v in body["over_time"]["variants"]) == 1
    assert [(s["delay_days"], s["orders"], s["sales"]) for s in body["steps"]] == [(0, 1, "199.00")]


def test_the_detail_page_loads_its_chart_from_the_days_of_the_campaign(ran):
    client = ran.session(ran.operator)
    page = client.get(f"/campaigns/{ran.campaign.pk}/").content.decode()
    assert 'id="over-time-chart"' in page and f"/campaigns/{ran.campaign.pk}/over-time/" in page
    data = client.get(f"/campaigns/{ran.campaign.pk}/over-time/").json()
    assert data["days"][0] == "2026-03-02" and sum(sum(v["replied"]) for v in data["variants"]) == 1


def test_a_campaign_without_enrolments_has_one_empty_day(brand):
    with brand.scope():
        made = campaign(brand, [TASK])
        series = reports.campaign_over_time(made, brand.tenant, timezone.now())
    assert len(series["days"]) == 1 and series["variants"] == []


def test_another_brand_and_guides_cannot_read_the_report(ran, other_brand):
    assert other_brand.api().get(f"/api/v1/campaign-reports/{ran.campaign.pk}/").status_code == 404
    assert other_brand.session(other_brand.operator).get(f"/campaigns/{ran.campaign.pk}/over-time/").status_code == 404
    assert ran.session(ran.guide).get(f"/api/v1/campaign-reports/{ran.campaign.pk}/").status_code == 403
    assert ran.session(ran.guide).get(f"/campaigns/{ran.campaign.pk}/over-time/").status_code == 403
