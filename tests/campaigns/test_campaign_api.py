"""Campaigns created and changed over the API: nested steps, the builder's rules, field paths for
another brand's ids, status actions, and what a running campaign may no longer change."""
import pytest

from campaigns import services
from campaigns.models import Campaign, Enrolment, GuideTask, Step, StepRun, Survey
from tagging.services import save_segment, save_tag, save_tag_group
from tests.api_cases import ModelEndpointCases, assert_error, patch_json, post_json

from .helpers import T0, campaign, full_run, member, template

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"
TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好"}


def make_campaigns(brand, names):
    with brand.scope():
        return [campaign(brand, [TASK], name=name, status=Campaign.Status.DRAFT) for name in names]


def manual_tag(brand, name="VIP"):
    with brand.scope():
        group = save_tag_group(brand.tenant, {"name": "运营标签", "kind": "manual"})
        return save_tag(brand.tenant, {"group": group, "name": name})


def segment(brand):
    with brand.scope():
        return save_segment(brand.tenant, {"name": "女", "rules": {"field": "gender", "op": "eq", "value": "female"}})


def welcome(brand, **fields):
    """A stage-entered campaign with a guide task and an SMS, as the builder would make it."""
    return {
        "name": "新客欢迎", "trigger": "stage_entered", "trigger_stage": "introduction",
        "audience_stores": [brand.store.pk], "reentry_days": None, "exit_on_purchase": True,
        "steps": [
            {"delay_days": 0, "action": "guide_task", "script": "{name}您好，欢迎加入", "due_hours": 48},
            {"delay_days": 3, "action": "message", "channel": "sms", "script": "{name}，新品到店", "promotional": True},
        ],
        **fields,
    }


def steps_of(brand, campaign_id):
    with brand.scope():
        return list(Step.objects.filter(campaign_id=campaign_id).order_by("position").values_list(
            "position", "delay_days", "action", "script"))


class TestCampaignEndpoint(ModelEndpointCases):
    url = URL
    model = Campaign
    contract_fields = ("name", "status", "trigger", "trigger_stage", "segment", "audience_stages", "audience_tags",
                       "audience_stores", "variants", "control_pct", "steps", "created_at")
    # session/key, count, campaigns, their steps
    list_queries = 4

    def make(self, brand, count):
        return make_campaigns(brand, [f"C{i}" for i in range(count)])

    def make_more(self, brand, count):
        return make_campaigns(brand, [f"M{i}" for i in range(count)])

    def create_payload(self, brand):
        return welcome(brand)

    def foreign_payloads(self, brand, other):
        return [("segment", welcome(brand, segment=segment(other).pk))]

    def update_payload(self, brand, obj):
        return {"name": "会员日", "description": "每月18日"}, {"name": "会员日", "description": "每月18日"}


def test_a_campaign_is_created_with_its_steps_in_order_as_a_draft(brand):
    tag = manual_tag(brand)
    response = post_json(brand.api(), URL, welcome(brand, audience_tags=[tag.pk], audience_stages=["introduction"]))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert [(s["position"], s["delay_days"], s["action"]) for s in body["steps"]] == [
        (0, 0, "guide_task"), (1, 3, "message")]
    assert (body["audience_tags"], body["audience_stores"], body["audience_stages"]) == (
        [tag.pk], [brand.store.pk], ["introduction"])
    assert steps_of(brand, body["id"]) == [(0, 0, "guide_task", "{name}您好，欢迎加入"), (1, 3, "message", "{name}，新品到店")]


def test_a_campaign_made_over_the_api_enrols_and_gives_the_guide_a_task_once_activated(brand):
    body = post_json(brand.api(), URL, welcome(brand)).json()
    assert brand.api().post(f"{URL}{body['id']}/activate/").json()["status"] == "active"
    with brand.scope():
        member(brand, name="林晓")
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.run_due_steps(brand.tenant, T0)
        assert list(GuideTask.objects.values_list("campaign_id", "script")) == [(body["id"], "林晓您好，欢迎加入")]


def test_another_brands_coupon_in_a_step_is_refused_on_that_steps_field_and_nothing_is_stored(brand, other_brand):
    with other_brand.scope():
        theirs = template(other_brand)
    payload = welcome(brand)
    payload["steps"].append({"delay_days": 7, "action": "coupon", "coupon_template": theirs.pk})
    payload["steps"][1], payload["steps"][2] = payload["steps"][2], payload["steps"][1]
    error = assert_error(post_json(brand.api(), URL, payload), 400, field="steps[1].coupon_template")
    assert set(error["fields"]) == {"steps[1].coupon_template"}
    with brand.scope():
        assert not Campaign.objects.exists() and not Step.objects.exists()


def test_another_brands_tag_or_store_in_the_audience_is_refused_on_its_position(brand, other_brand):
    mine, theirs = manual_tag(brand), manual_tag(other_brand)
    payload = welcome(brand, audience_tags=[mine.pk, theirs.pk], audience_stores=[other_brand.store.pk])
    error = assert_error(post_json(brand.api(), URL, payload), 400)
    assert set(error["fields"]) == {"audience_tags[1]", "audience_stores[0]"}


def test_another_brands_tag_in_a_step_is_refused_on_update_and_the_steps_stay(brand, other_brand):
    created = post_json(brand.api(), URL, welcome(brand)).json()
    theirs = manual_tag(other_brand)
    steps = created["steps"] + [{"delay_days": 1, "action": "add_tag", "tag": theirs.pk}]
    assert_error(patch_json(brand.api(), f"{URL}{created['id']}/", {"steps": steps}), 400, field="steps[2].tag")
    assert len(steps_of(brand, created["id"])) == 2


@pytest.mark.parametrize("change, field", [
    ({"trigger_stage": ""}, "trigger_stage"),
    ({"trigger": "no_purchase", "trigger_days": None}, "trigger_days"),
    ({"trigger": "schedule", "schedule": "weekly", "schedule_day": 9}, "schedule_day"),
    ({"variants": [{"key": "A", "weight": 45}, {"key": "B", "weight": 45}], "control_pct": 5}, "variants"),
    ({"variants": [{"key": "A", "weight": 50}, {"key": "A", "weight": 40}], "control_pct": 10}, "variants[1].key"),
    ({"variants": [{"key": "control", "weight": 100}]}, "variants[0].key"),
    ({"steps": [{"action": "message", "script": "hi"}]}, "steps[0].channel"),
    ({"steps": [TASK, {"action": "guide_task", "script": "{name} {nickname}"}]}, "steps[1].script"),
    ({"steps": [TASK, {"action": "coupon"}]}, "steps[1].coupon_template"),
    ({"steps": [{**TASK, "variant": "B"}], "variants": [{"key": "A", "weight": 100}]}, "steps[0].variant"),
    ({"steps": [{"action": "fly"}]}, "steps[0].action"),
])
def test_the_builders_rules_refuse_a_campaign_on_the_field_at_fault(brand, change, field):
    error = assert_error(post_json(brand.api(), URL, welcome(brand, **change)), 400, field=field)
    assert error["code"] == "invalid"
    with brand.scope():
        assert not Campaign.objects.exists()


def test_variants_with_weights_and_a_control_are_stored_and_split_the_audience(brand):
    payload = welcome(brand, variants=[{"key": "A", "weight": 45, "label": "¥30"}, {"key": "B", "weight": 45}],
                      control_pct=10)
    payload["steps"][1]["variant"] = "B"
    body = post_json(brand.api(), URL, payload).json()
    assert body["variants"] == [{"key": "A", "weight": 45, "label": "¥30"}, {"key": "B", "weight": 45, "label": ""}]
    assert (body["control_pct"], body["steps"][1]["variant"]) == (10, "B")


def test_status_moves_through_activate_pause_and_end_and_an_ended_campaign_is_final(brand):
    client = brand.api()
    empty = post_json(client, URL, welcome(brand, steps=[])).json()
    assert_error(client.post(f"{URL}{empty['id']}/activate/"), 400, field="steps")
    made = post_json(client, URL, welcome(brand)).json()
    detail = f"{URL}{made['id']}/"
    assert_error(client.post(f"{detail}pause/"), 400, field="status")
    verbs = ("activate", "activate", "pause", "activate")
    statuses = [client.post(f"{detail}{verb}/").json()["status"] for verb in verbs]
    assert statuses == ["active", "active", "paused", "active"]
    assert client.post(f"{detail}end/").json()["status"] == "ended"
    assert_error(client.post(f"{detail}activate/"), 400, field="status")
    assert_error(patch_json(client, detail, {"name": "again"}), 400, field="status")
    assert client.get(detail).json()["name"] == "新客欢迎"


def test_status_is_changed_only_through_the_actions(brand):
    made = post_json(brand.api(), URL, welcome(brand, status="active")).json()
    assert made["status"] == "draft"
    assert patch_json(brand.api(), f"{URL}{made['id']}/", {"status": "active"}).json()["status"] == "draft"


def test_guides_and_store_managers_read_campaigns_but_cannot_make_or_start_them(brand):
    made = post_json(brand.api(), URL, welcome(brand)).json()
    for staff in (brand.guide, brand.manager):
        client = brand.session(staff)
        assert client.get(f"{URL}{made['id']}/").status_code == 200
        assert_error(post_json(client, URL, welcome(brand)), 403)
        assert_error(client.post(f"{URL}{made['id']}/activate/"), 403)
    assert brand.session(brand.operator).post(f"{URL}{made['id']}/activate/").status_code == 200


def test_another_brand_cannot_change_the_status_or_the_steps_of_a_campaign(brand, other_brand):
    made = post_json(brand.api(), URL, welcome(brand)).json()
    for verb in ("activate", "pause", "end"):
        assert_error(other_brand.api().post(f"{URL}{made['id']}/{verb}/"), 404)
    assert_error(patch_json(other_brand.api(), f"{URL}{made['id']}/", {"steps": []}), 404)
    assert brand.api().get(f"{URL}{made['id']}/").json() == made


# ---------------------------------------------------------------- a running campaign's steps

@pytest.fixture
def running(brand):
    """An active campaign whose day-0 task ran for one member; its day-3 message has not run yet."""
    made = post_json(brand.api(), URL, welcome(brand)).json()
    brand.api().post(f"{URL}{made['id']}/activate/")
    with brand.scope():
        member(brand)
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.run_due_steps(brand.tenant, T0)
        assert StepRun.objects.count() == 1 and GuideTask.objects.count() == 1
    return brand.api().get(f"{URL}{made['id']}/").json()


def test_a_step_that_ran_cannot_be_deleted_and_the_task_it_made_stays(brand, running):
    ran, waiting = running["steps"]
    error = assert_error(patch_json(brand.api(), f"{URL}{running['id']}/", {"steps": [waiting]}), 400, field="steps")
    assert str(ran["id"]) in error["fields"]["steps"][0]
    with brand.scope():
        assert GuideTask.objects.count() == 1 and Step.objects.count() == 2


def test_a_step_that_ran_keeps_its_action_day_and_variant_but_its_script_may_change(brand, running):
    ran, waiting = running["steps"]
    detail = f"{URL}{running['id']}/"
    changed = {**ran, "action": "message", "channel": "sms"}
    assert_error(patch_json(brand.api(), detail, {"steps": [changed, waiting]}), 400, field="steps[0].action")
    assert_error(patch_json(brand.api(), detail, {"steps": [{**ran, "delay_days": 1}, waiting]}), 400,
                 field="steps[0].delay_days")
    reworded = patch_json(brand.api(), detail, {"steps": [{**ran, "script": "{name}，好久不见"}, waiting]})
    assert reworded.status_code == 200, reworded.content
    assert reworded.json()["steps"][0]["script"] == "{name}，好久不见"


def test_a_step_that_has_not_run_may_be_deleted_and_new_steps_added_in_any_order(brand, running):
    ran, waiting = running["steps"]
    added = {"delay_days": 7, "action": "guide_task", "script": "{name}，回访"}
    response = patch_json(brand.api(), f"{URL}{running['id']}/", {"steps": [added, ran]})
    assert response.status_code == 200, response.content
    steps = response.json()["steps"]
    assert [(s["position"], s["delay_days"]) for s in steps] == [(0, 7), (1, 0)]
    assert steps[1]["id"] == ran["id"]
    with brand.scope():
        assert not Step.objects.filter(pk=waiting["id"]).exists()
        assert GuideTask.objects.get().step_id == ran["id"]


def test_a_step_id_of_another_campaign_is_refused(brand, running):
    other = post_json(brand.api(), URL, welcome(brand, name="另一个")).json()
    steps = [{**running["steps"][1], "script": "挪用"}]
    assert_error(patch_json(brand.api(), f"{URL}{other['id']}/", {"steps": steps}), 400, field="steps[0].id")
    assert steps_of(brand, running["id"])[1][3] == "{name}，新品到店"


def test_the_experiment_split_is_fixed_once_members_are_enrolled(brand, running):
    detail = f"{URL}{running['id']}/"
    payload = {"variants": [{"key": "A", "weight": 50}], "control_pct": 50}
    error = assert_error(patch_json(brand.api(), detail, payload), 400)
    assert set(error["fields"]) == {"variants", "control_pct"}
    with brand.scope():
        assert Enrolment.objects.get().variant == ""
    assert brand.api().get(detail).json()["variants"] == []


def test_campaigns_are_listed_by_status_and_name(brand):
    made = post_json(brand.api(), URL, welcome(brand)).json()
    post_json(brand.api(), URL, welcome(brand, name="生日关怀"))
    brand.api().post(f"{URL}{made['id']}/activate/")
    listed = brand.api().get(URL, {"status": "active"}).json()["results"]
    assert [c["name"] for c in listed] == ["新客欢迎"]
    assert [c["name"] for c in brand.api().get(URL, {"q": "生日"}).json()["results"]] == ["生日关怀"]


def test_a_survey_step_must_name_the_brands_own_survey(brand, other_brand):
    with other_brand.scope():
        theirs = Survey.objects.create(tenant=other_brand.tenant, name="告别问卷")
    with brand.scope():
        mine = Survey.objects.create(tenant=brand.tenant, name="告别问卷")
    step = {"action": "survey", "channel": "sms", "script": "{name}，聊聊好吗 {survey_link}"}
    refused = post_json(brand.api(), URL, welcome(brand, steps=[{**step, "survey": theirs.pk}]))
    assert_error(refused, 400, field="steps[0].survey")
    made = post_json(brand.api(), URL, welcome(brand, steps=[{**step, "survey": mine.pk}]))
    assert made.status_code == 201, made.content
    assert made.json()["steps"][0]["survey"] == mine.pk
