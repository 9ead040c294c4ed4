"""The guide's task list, the store's tasks and handover, the builder, the report, the outbox."""
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, GuideTask, Message, OutreachSettings
from members.models import Member

from .helpers import campaign, full_run, member, template

pytestmark = pytest.mark.django_db

TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好，{coupon}已放入您的账户：{coupon_code}"}


@pytest.fixture
def tasks(brand):
    """Two tasks for the first guide (one overdue), one for the second guide."""
    now = timezone.now()
    with brand.scope():
        gift = template(brand, name="回店礼")
        joined = now - timedelta(days=10)
        mine = member(brand, name="林晓", joined_at=joined)
        late = member(brand, name="王芳", joined_at=joined)
        theirs = member(brand, name="周敏", owner_guide=brand.guide2, home_store=brand.store2, joined_at=joined)
        welcome = campaign(brand, [{**TASK, "coupon_template": gift, "due_hours": 6}])
        run = full_run(brand, now - timedelta(hours=1))
        services.enrol_from_run(brand.tenant, run.pk, now - timedelta(hours=1))
        services.run_due_steps(brand.tenant, now - timedelta(minutes=30))
        GuideTask.objects.filter(member=late).update(due_at=now - timedelta(hours=2))
    return {"mine": mine, "late": late, "theirs": theirs, "campaign": welcome}


def task_of(brand, who):
    with brand.scope():
        return GuideTask.objects.get(member=who)


def test_a_guide_sees_only_their_tasks_with_the_member_card_and_the_script(brand, tasks):
    page = brand.session(brand.guide).get("/guide/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "林晓" in html and "王芳" in html and "周敏" not in html
    task = task_of(brand, tasks["mine"])
    assert f"林晓您好，回店礼已放入您的账户：{task.coupon.display_code}" in html
    assert page.context["counts"]["overdue"] == 1 and page.context["counts"]["open"] == 2
    assert [key for key, _label, _rows in page.context["groups"]][0] == "overdue"
    assert html.count("task-card mb-3 overdue") == 1


def test_a_tap_on_an_outcome_closes_the_task_and_a_second_tap_changes_nothing(brand, tasks):
    client = brand.session(brand.guide)
    task = task_of(brand, tasks["mine"])
    answer = client.post(f"/guide/tasks/{task.pk}/outcome/", {"outcome": "replied"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and 'data-status="replied"' in answer.content.decode()
    client.post(f"/guide/tasks/{task.pk}/outcome/", {"outcome": "bought"}, HTTP_HX_REQUEST="true")
    task.refresh_from_db()
    assert task.status == "replied" and task.done_at is not None
    assert client.get("/guide/").context["counts"]["done_today"] == 1


def test_skipping_needs_a_reason(brand, tasks):
    client = brand.session(brand.guide)
    task = task_of(brand, tasks["mine"])
    answer = client.post(f"/guide/tasks/{task.pk}/outcome/", {"outcome": "skipped", "reason": " "}, HTTP_HX_REQUEST="true")
    assert "请说明跳过原因。" in answer.content.decode()
    task.refresh_from_db()
    assert task.status == "open"
    client.post(f"/guide/tasks/{task.pk}/outcome/", {"outcome": "skipped", "reason": "顾客出国"})
    task.refresh_from_db()
    assert (task.status, task.skip_reason) == ("skipped", "顾客出国")


def test_a_snoozed_task_leaves_the_list_until_later(brand, tasks):
    client = brand.session(brand.guide)
    task = task_of(brand, tasks["mine"])
    client.post(f"/guide/tasks/{task.pk}/snooze/", {"until": "2h"})
    html = client.get("/guide/").content.decode()
    assert "林晓" not in html and "王芳" in html


def test_a_guide_cannot_act_on_another_guides_task_or_another_brands(brand, other_brand, tasks):
    theirs = task_of(brand, tasks["theirs"])
    assert brand.session(brand.guide).post(f"/guide/tasks/{theirs.pk}/outcome/", {"outcome": "sent"}).status_code == 404
    assert other_brand.session(other_brand.guide).post(f"/guide/tasks/{theirs.pk}/outcome/", {"outcome": "sent"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"


def test_a_store_manager_sees_the_store_guides_and_hands_a_leaving_guide_over(brand, tasks):
    client = brand.session(brand.manager)
    page = client.get("/campaigns/tasks/")
    rows = {row["guide__name"]: row for row in page.context["rows"]}
    assert set(rows) == {"导购甲"} and rows["导购甲"]["open"] == 2
    with brand.scope():
        from scrm.services import create_staff
        from scrm.models import Staff
        newcomer = create_staff(brand.tenant, "acme_guide3", "pw-123456789", "导购丙", Staff.Role.GUIDE, [brand.store])
    answer = client.post("/campaigns/tasks/handover/", {"leaving": brand.guide.pk, "to_guide": newcomer.pk})
    assert answer.status_code == 302
    with brand.scope():
        assert set(Member.objects.filter(owner_guide=newcomer).values_list("name", flat=True)) == {"林晓", "王芳"}
        assert GuideTask.objects.filter(guide=newcomer, status="open").count() == 2
        assert not GuideTask.objects.filter(guide=brand.guide, status="open").exists()


def test_a_store_manager_cannot_hand_over_a_guide_of_another_store(brand, tasks):
    answer = brand.session(brand.manager).post("/campaigns/tasks/handover/", {"leaving": brand.guide2.pk, "to_guide": brand.guide.pk})
    assert answer.status_code == 302
    with brand.scope():
        assert Member.objects.get(pk=tasks["theirs"].pk).owner_guide_id == brand.guide2.pk


def test_an_operator_builds_a_campaign_with_steps(brand):
    client = brand.session(brand.operator)
    data = {
        "name": "沉睡唤醒", "status": "draft", "trigger": "stage_entered", "trigger_stage": "dormant",
        "control_pct": "10", "variants_text": "A 45 ¥30\nB 45 ¥50",
        "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000",
        "steps-0-delay_days": "0", "steps-0-action": "guide_task", "steps-0-variant": "A",
        "steps-0-script": "{name}好久不见", "steps-0-due_hours": "24",
    }
    answer = client.post("/campaigns/new/", data)
    assert answer.status_code == 302, answer.context["form"].errors if answer.context else answer
    with brand.scope():
        made = Campaign.objects.get()
        assert made.variants == [{"key": "A", "weight": 45, "label": "¥30"}, {"key": "B", "weight": 45, "label": "¥50"}]
        assert [(s.action, s.variant, s.script) for s in made.steps.all()] == [("guide_task", "A", "{name}好久不见")]
    assert client.get(f"/campaigns/{made.pk}/").status_code == 200
    assert "沉睡唤醒" in client.get("/campaigns/").content.decode()


def test_the_builder_names_what_is_wrong(brand):
    client = brand.session(brand.operator)
    answer = client.post("/campaigns/new/", {
        "name": "x", "status": "draft", "trigger": "stage_entered", "control_pct": "0", "variants_text": "A 60",
        "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000",
        "steps-0-delay_days": "0", "steps-0-action": "message", "steps-0-script": "{nmae}", "steps-0-due_hours": "24",
    })
    assert answer.status_code == 200
    assert set(answer.context["form"].errors) == {"trigger_stage", "variants_text"}
    assert set(answer.context["steps"].forms[0].errors) == {"channel", "script"}
    with brand.scope():
        assert not Campaign.objects.exists()


def test_the_live_audience_count_counts_the_chosen_store(brand):
    with brand.scope():
        member(brand)
        member(brand, home_store=brand.store2)
    answer = brand.session(brand.operator).get("/campaigns/audience-count/", {"audience_stores": [brand.store2.pk]})
    assert answer.content.decode() == "当前人群 1 人"


def test_the_report_shows_the_funnel(brand, tasks):
    client = brand.session(brand.operator)
    page = client.get(f"/campaigns/{tasks['campaign'].pk}/")
    arm = page.context["results"]["arms"][0]
    assert (arm["enrolled"], arm["touched"], arm["converted"]) == (3, 3, 0)
    listing = client.get("/campaigns/").context["campaigns"][0].figures
    assert listing["enrolled"] == 3


def test_guides_cannot_open_the_builder_or_the_outbox(brand):
    client = brand.session(brand.guide)
    assert client.get("/campaigns/").status_code == 403
    assert client.get("/campaigns/outbox/").status_code == 403
    assert client.get("/campaigns/tasks/").status_code == 302


def test_secrets_are_stored_but_never_shown_back_and_blank_keeps_them(brand):
    client = brand.session(brand.owner)
    base = {"max_touches": "2", "per_days": "7", "quiet_start": "21:00", "quiet_end": "09:00", "dont_disturb_days": "7",
            "attribution_days": "7", "wecom_api_base": "https://qyapi.weixin.qq.com", "sms_url": "https://sms.example.com/send",
            "sms_account": "acme"}
    assert client.post("/campaigns/settings/", {**base, "sms_secret": "s3cret-value"}).status_code == 302
    page = client.get("/campaigns/settings/").content.decode()
    assert "s3cret-value" not in page and "https://sms.example.com/send" in page
    client.post("/campaigns/settings/", {**base, "sms_secret": ""})
    with brand.scope():
        assert OutreachSettings.objects.get().sms_secret == "s3cret-value"


def test_a_dead_message_can_be_queued_again_from_the_outbox(brand, other_brand):
    now = timezone.now()
    with brand.scope():
        dead = Message.objects.create(tenant=brand.tenant, channel="webhook", recipient="M1", body="hi", status="dead",
                                      attempts=6, last_error="HTTP 500", idempotency_key="k1", next_attempt_at=now,
                                      created_at=now)
    page = brand.session(brand.operator).get("/campaigns/outbox/?status=dead").content.decode()
    assert "HTTP 500" in page
    assert other_brand.session(other_brand.operator).post(f"/campaigns/outbox/{dead.pk}/retry/").status_code == 404
    brand.session(brand.operator).post(f"/campaigns/outbox/{dead.pk}/retry/")
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("queued", 0)
