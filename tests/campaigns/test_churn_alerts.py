"""Churn alerts (流失提醒): who deleted their guide, seen by role, handed to a campaign once, and the
alert when one guide loses many contacts in a day."""
import json
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from campaigns import tasks
from campaigns.models import Enrolment, LiveCode, LiveCodeJoin
from members import services as members
from tests.api_cases import assert_error

from .helpers import campaign, member, order

pytestmark = pytest.mark.django_db


def event(brand, who, kind, when):
    _outcomes, errors = members.ingest_events(brand.tenant, [(0, {
        "external_id": f"{kind}-{who.external_id}-{when.timestamp()}", "member_external_id": who.external_id,
        "type": kind, "occurred_at": when, "properties": {"userid": "g", "by": "customer"},
    })])
    assert not errors


def deleted_member(brand, name, when, **fields):
    who = member(brand, name=name, **fields)
    event(brand, who, "contact_deleted", when)
    return who


@pytest.fixture
def alerts(brand):
    """林晓 (guide 1, store 1): added the guide 40 days ago, bought 20 days ago, deleted yesterday.
    周敏 (guide 2, store 2): joined through a live code 12 days ago, deleted 2 hours ago (11 full days).
    王芳 (guide 1): still a contact."""
    now = timezone.now()
    with brand.scope():
        lin = member(brand, name="林晓", mobile="13800138001", joined_at=now - timedelta(days=400))
        event(brand, lin, "contact_added", now - timedelta(days=40))
        order(brand, lin, now - timedelta(days=20), total="299.00")
        event(brand, lin, "contact_deleted", now - timedelta(days=1))
        zhou = member(brand, name="周敏", owner_guide=brand.guide2, home_store=brand.store2, joined_at=now - timedelta(days=300))
        code = LiveCode.objects.create(tenant=brand.tenant, name="包裹卡", channel_type=LiveCode.ChannelType.PARCEL_CARD)
        LiveCodeJoin.objects.create(tenant=brand.tenant, live_code=code, member=zhou, guide=brand.guide2, store=brand.store2,
                                    door="landing", key="k1", joined_at=now - timedelta(days=12))
        event(brand, zhou, "contact_deleted", now - timedelta(hours=2))
        wang = member(brand, name="王芳")
    return {"lin": lin, "zhou": zhou, "wang": wang}


def names(response):
    return [row["name"] for row in response.json()["results"]]


def test_the_list_is_newest_first_with_the_card_the_guide_days_as_a_contact_and_the_last_order(brand, alerts):
    answer = brand.api().get("/api/v1/churn-alerts/")
    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [r["name"] for r in rows] == ["周敏", "林晓"]
    zhou, lin = rows
    assert zhou["days_as_contact"] == 11 and zhou["guide"] == {"id": brand.guide2.pk, "name": brand.guide2.name}
    assert zhou["last_order_at"] is None
    assert lin["days_as_contact"] == 39 and lin["masked_mobile"] == "138****8001" and "mobile" not in lin
    assert lin["last_order_total"] == "299.00" and lin["store"]["id"] == brand.store.pk


def test_the_page_lists_the_same_members_with_a_link_to_each_member_page(brand, alerts):
    page = brand.session(brand.operator).get("/campaigns/churn-alerts/")
    html = page.content.decode()
    assert page.status_code == 200 and [m.name for m in page.context["rows"]] == ["周敏", "林晓"]
    assert f'/members/{alerts["lin"].pk}/' in html and "王芳" not in html and "138****8001" in html


def test_guides_see_their_own_and_store_managers_their_stores(brand, alerts):
    assert names(brand.session(brand.guide).get("/api/v1/churn-alerts/")) == ["林晓"]
    assert names(brand.session(brand.guide2).get("/api/v1/churn-alerts/")) == ["周敏"]
    assert names(brand.session(brand.manager).get("/api/v1/churn-alerts/")) == ["林晓"]
    page = brand.session(brand.guide).get("/campaigns/churn-alerts/")
    assert [m.name for m in page.context["rows"]] == ["林晓"] and not page.context["may_hand_over"]


def test_the_period_and_the_store_and_guide_filters_narrow_the_list(brand, alerts):
    client = brand.api()
    today = timezone.localdate(timezone.now(), brand.tenant.zone)
    old = (today - timedelta(days=60)).isoformat()
    assert names(client.get("/api/v1/churn-alerts/", {"start": old, "end": (today - timedelta(days=50)).isoformat()})) == []
    assert names(client.get("/api/v1/churn-alerts/", {"store_id": brand.store2.pk})) == ["周敏"]
    assert names(client.get("/api/v1/churn-alerts/", {"guide_id": brand.guide.pk})) == ["林晓"]


@pytest.mark.parametrize("params, field", [
    ({"start": "yesterday"}, "start"),
    ({"start": "2026-03-10", "end": "2026-03-01"}, "end"),
    ({"start": "2025-01-01", "end": "2025-12-31"}, "end"),
    ({"threshold": "0"}, "threshold"),
    ({"store_id": "999999"}, "store_id"),
])
def test_bad_parameters_are_named(brand, params, field):
    assert_error(brand.api().get("/api/v1/churn-alerts/", params), 400, field)


def test_another_brand_sees_none_of_these_deletions_and_cannot_filter_by_our_store(brand, other_brand, alerts):
    assert names(other_brand.api().get("/api/v1/churn-alerts/")) == []
    assert_error(other_brand.api().get("/api/v1/churn-alerts/", {"store_id": brand.store.pk}), 400, "store_id")
    assert list(other_brand.session(other_brand.operator).get("/campaigns/churn-alerts/").context["rows"]) == []


# ---------------------------------------------------------------- hand to a campaign

@pytest.fixture
def recall(brand):
    with brand.scope():
        return campaign(brand, [{"delay_days": 0, "action": "guide_task", "script": "{name}，好久不见"}],
                        name="流失召回", trigger="contact_deleted")


def enrolled(brand, recall):
    with brand.scope():
        return Enrolment.objects.filter(campaign=recall).count()


def test_handing_members_to_a_campaign_enrols_them_once_however_often_it_is_clicked(brand, alerts, recall):
    client = brand.session(brand.operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    form = {"campaign": recall.pk, "members": [alerts["lin"].pk, alerts["zhou"].pk], "next": "/campaigns/churn-alerts/"}
    first = client.post("/campaigns/churn-alerts/hand-to-campaign/", form, follow=True)
    assert enrolled(brand, recall) == 2
    assert "2 of 2 members enrolled in 流失召回" in first.content.decode()
    second = client.post("/campaigns/churn-alerts/hand-to-campaign/", form, follow=True)
    assert enrolled(brand, recall) == 2
    assert "0 of 2 members enrolled in 流失召回; 2 were in it already" in second.content.decode()


def test_the_api_hands_over_and_says_who_was_in_it_already(brand, alerts, recall):
    client = brand.api()
    url = "/api/v1/churn-alerts/hand-to-campaign/"
    body = {"campaign": recall.pk, "members": [alerts["lin"].pk]}
    first = client.post(url, json.dumps(body), content_type="application/json").json()
    assert first == {"selected": 1, "enrolled": 1, "already": 0, "not_in_audience": 0}
    again = client.post(url, json.dumps({**body, "members": [alerts["lin"].pk, alerts["zhou"].pk]}),
                        content_type="application/json").json()
    assert again == {"selected": 2, "enrolled": 1, "already": 1, "not_in_audience": 0}
    assert enrolled(brand, recall) == 2


def test_only_members_in_the_alerts_can_be_handed_over_and_guides_cannot(brand, alerts, recall):
    url = "/api/v1/churn-alerts/hand-to-campaign/"
    still_a_contact = {"campaign": recall.pk, "members": [alerts["wang"].pk]}
    assert_error(brand.api().post(url, json.dumps(still_a_contact), content_type="application/json"), 400, "members")
    theirs = {"campaign": recall.pk, "members": [alerts["zhou"].pk]}
    assert_error(brand.session(brand.manager).post(url, json.dumps(theirs), content_type="application/json"), 400, "members")
    mine = {"campaign": recall.pk, "members": [alerts["lin"].pk]}
    assert_error(brand.session(brand.guide).post(url, json.dumps(mine), content_type="application/json"), 403)
    assert brand.session(brand.guide).post("/campaigns/churn-alerts/hand-to-campaign/", mine).status_code == 403
    assert enrolled(brand, recall) == 0


def test_a_paused_campaign_or_another_brands_campaign_is_refused(brand, other_brand, alerts, recall):
    url = "/api/v1/churn-alerts/hand-to-campaign/"
    with other_brand.scope():
        foreign = campaign(other_brand, [{"delay_days": 0, "action": "guide_task", "script": "x"}], name="别家")
    assert_error(brand.api().post(url, json.dumps({"campaign": foreign.pk, "members": [alerts["lin"].pk]}),
                                  content_type="application/json"), 400, "campaign")
    recall.status = "paused"
    recall.save()
    assert_error(brand.api().post(url, json.dumps({"campaign": recall.pk, "members": [alerts["lin"].pk]}),
                                  content_type="application/json"), 400, "campaign")


# ---------------------------------------------------------------- many contacts lost in a day

def yesterday_at(brand, hour):
    day = timezone.localdate(timezone.now(), brand.tenant.zone) - timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=brand.tenant.zone)


@pytest.fixture
def bad_day(brand):
    """Guide 1 loses five contacts yesterday; guide 2 loses four."""
    with brand.scope():
        for i in range(5):
            deleted_member(brand, f"甲{i}", yesterday_at(brand, 9 + i))
        for i in range(4):
            deleted_member(brand, f"乙{i}", yesterday_at(brand, 9 + i), owner_guide=brand.guide2, home_store=brand.store2)


def test_a_guide_who_loses_five_contacts_in_a_day_is_flagged_and_four_is_not(brand, bad_day):
    body = brand.api().get("/api/v1/churn-alerts/").json()
    day = (timezone.localdate(timezone.now(), brand.tenant.zone) - timedelta(days=1)).isoformat()
    assert body["threshold"] == 5
    assert body["guides_over_threshold"] == [
        {"guide_id": brand.guide.pk, "guide_name": brand.guide.name, "day": day, "deletions": 5}]
    lower = brand.api().get("/api/v1/churn-alerts/", {"threshold": 4}).json()["guides_over_threshold"]
    assert [(r["guide_id"], r["deletions"]) for r in lower] == [(brand.guide.pk, 5), (brand.guide2.pk, 4)]


def test_the_page_shows_the_banner_and_a_store_manager_sees_only_their_guides(brand, bad_day):
    page = brand.session(brand.operator).get("/campaigns/churn-alerts/")
    assert 'data-testid="mass-loss-banner"' in page.content.decode()
    manager = brand.session(brand.manager).get("/campaigns/churn-alerts/?threshold=4")
    assert [r["guide_id"] for r in manager.context["over"]] == [brand.guide.pk]
    quiet = brand.session(brand.guide2).get("/campaigns/churn-alerts/")
    assert 'data-testid="mass-loss-banner"' not in quiet.content.decode()


def test_the_daily_check_reports_yesterdays_guides_over_the_threshold(brand, other_brand, bad_day):
    as_of = timezone.now().isoformat()
    found = tasks.check_mass_losses.delay(brand.tenant.pk, as_of).get()
    assert [(r["guide_id"], r["deletions"]) for r in found] == [(brand.guide.pk, 5)]
    assert tasks.check_mass_losses.delay(other_brand.tenant.pk, as_of).get() == []
    tasks.check_churn_alerts.delay(as_of).get()
