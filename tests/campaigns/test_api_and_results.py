"""The API (guide tasks, campaigns, outbox) with tenant isolation; the results and their uplift."""
from datetime import timedelta

import pytest

from campaigns import queries, services
from campaigns.models import Enrolment, GuideTask, Message
from lifecycle import services as lifecycle

from .helpers import T0, campaign, full_run, many_members, member, order

pytestmark = pytest.mark.django_db

TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好"}


@pytest.fixture
def task(brand):
    with brand.scope():
        member(brand, name="林晓")
        campaign(brand, [TASK])
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.run_due_steps(brand.tenant, T0)
        return GuideTask.objects.get()


def test_an_integrator_lists_tasks_and_records_an_outcome(brand, task):
    client = brand.api()
    listed = client.get("/api/v1/guide-tasks/", {"status": "open"}).json()
    assert [(t["id"], t["member_name"], t["script"]) for t in listed["results"]] == [(task.pk, "林晓", "林晓您好")]
    answer = client.post(f"/api/v1/guide-tasks/{task.pk}/outcome/", {"outcome": "sent"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "sent"
    refused = client.post(f"/api/v1/guide-tasks/{task.pk}/outcome/", {"outcome": "flew"}, format="json")
    assert refused.status_code == 400


def test_a_guide_sees_only_their_tasks_over_the_api(brand, task):
    assert len(brand.session(brand.guide).get("/api/v1/guide-tasks/").json()["results"]) == 1
    assert brand.session(brand.guide2).get("/api/v1/guide-tasks/").json()["results"] == []
    assert brand.session(brand.guide2).get(f"/api/v1/guide-tasks/{task.pk}/").status_code == 404


def test_another_brand_cannot_see_tasks_campaigns_or_messages(brand, other_brand, task):
    with brand.scope():
        message = Message.objects.create(tenant=brand.tenant, channel="console", recipient="x", body="hi",
                                         idempotency_key="k", created_at=T0, next_attempt_at=T0, status="dead")
    client = other_brand.api()
    assert client.get(f"/api/v1/guide-tasks/{task.pk}/").status_code == 404
    assert client.get(f"/api/v1/campaigns/{task.campaign_id}/").status_code == 404
    assert client.get(f"/api/v1/messages/{message.pk}/").status_code == 404
    assert client.post(f"/api/v1/messages/{message.pk}/retry/").status_code == 404
    assert client.get("/api/v1/guide-tasks/").json()["results"] == []
    message.refresh_from_db()
    assert message.status == "dead"


def test_the_outbox_is_for_operators_and_keys_only(brand, task):
    assert brand.session(brand.guide).get("/api/v1/messages/").status_code == 403
    assert brand.api().get("/api/v1/messages/").status_code == 200
    campaigns = brand.api().get("/api/v1/campaigns/").json()["results"]
    assert [len(c["steps"]) for c in campaigns] == [1]


def test_the_uplift_and_its_interval_match_a_worked_example():
    # 60 of 500 converted against 40 of 500 in the control: 12% - 8% = 4 points,
    # se = sqrt(.12*.88/500 + .08*.92/500) = 0.018931, 1.96 * se = 3.71 points.
    assert queries.uplift(60, 500, 40, 500) == {"diff": 4.0, "low": 0.29, "high": 7.71}
    assert queries.uplift(45, 500, 40, 500)["low"] < 0


def arm(label, converted, enrolled, control=(40, 500)):
    return {"label": label, "converted": converted, "enrolled": enrolled, "uplift": queries.uplift(converted, enrolled, *control)}


def test_the_verdict_names_a_winner_only_when_it_beats_the_control_and_every_other_variant():
    control = {"label": "Control", "converted": 40, "enrolled": 500, "uplift": None}
    # A 12% against B 7%: A - B = 5 points, interval 1.38 to 8.62, above zero: A wins.
    assert queries.verdict([control, arm("A", 60, 500), arm("B", 35, 500)]) == (
        "A 胜出：转化率比对照组高 4.0 个百分点（95% 区间 0.29 至 7.71）。"
    )
    # A 12% against B 8.4%: the A - B interval (-0.14 to 7.34) includes zero: no winner yet.
    assert queries.verdict([control, arm("A", 60, 500), arm("B", 42, 500)]).startswith("尚无明确胜出者")
    assert queries.verdict([control, arm("A", 45, 500)]).startswith("尚无明确胜出者")


def test_results_count_conversions_within_the_window_after_the_first_touch(in_brand):
    ids = many_members(in_brand, 40)
    split = campaign(in_brand, [TASK], variants=[{"key": "A", "weight": 50}], control_pct=50)
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    services.run_due_steps(in_brand.tenant, T0 + timedelta(hours=1))
    arms = dict(Enrolment.objects.values_list("member_id", "variant"))
    from members.models import Member

    buyers = Member.objects.filter(pk__in=ids)
    for who in buyers[:10]:
        order(in_brand, who, T0 + timedelta(days=3), total="100.00")
    late = buyers[10]
    order(in_brand, late, T0 + timedelta(days=9))
    results = queries.campaign_results(split, in_brand.tenant)
    by_arm = {row["variant"]: row for row in results["arms"]}
    expected_a = sum(1 for who in buyers[:10] if arms[who.pk] == "A")
    assert by_arm["A"]["converted"] == expected_a
    assert by_arm["A"]["touched"] == by_arm["A"]["enrolled"] == list(arms.values()).count("A")
    assert by_arm["control"]["touched"] == 0
    assert by_arm["control"]["converted"] == 10 - expected_a
    assert by_arm["A"]["sales"] == 100 * expected_a
    assert by_arm["A"]["uplift"] is not None


def test_a_finished_lifecycle_run_enrols_through_the_signal(in_brand, django_capture_on_commit_callbacks):
    member(in_brand)
    welcome = campaign(in_brand, [TASK])
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.score_full(in_brand.tenant, T0)
    assert Enrolment.objects.filter(campaign=welcome).count() == 1
