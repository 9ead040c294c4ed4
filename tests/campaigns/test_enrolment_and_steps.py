"""Trigger → enrolment → steps at their time, with a frozen as_of passed in."""
from datetime import timedelta

import pytest

from campaigns import delivery, services
from campaigns.models import Enrolment, GuideTask, Message, StepRun
from coupons.models import Coupon
from tagging.models import MemberTag, Tag, TagGroup

from .helpers import T0, at, campaign, full_run, many_members, member, order, template

pytestmark = pytest.mark.django_db

TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好，{guide}给您准备了礼物。"}
MESSAGE = {"delay_days": 3, "action": "message", "channel": "console", "script": "{name}，新品已到店"}


def test_a_stage_change_enrols_the_member_and_each_step_runs_on_its_day(in_brand):
    newcomer = member(in_brand, name="林晓")
    welcome = campaign(in_brand, [TASK, MESSAGE])
    run = full_run(in_brand, T0)

    assert services.enrol_from_run(in_brand.tenant, run.pk, T0) == {welcome.pk: 1}
    enrolment = Enrolment.objects.get()
    assert (enrolment.member_id, enrolment.guide_id, enrolment.enrolled_at) == (newcomer.pk, in_brand.guide.pk, T0)

    services.run_due_steps(in_brand.tenant, T0 + timedelta(hours=1))
    task = GuideTask.objects.get()
    assert task.script == "林晓您好，导购甲给您准备了礼物。"
    assert task.guide == in_brand.guide and task.due_at == T0 + timedelta(hours=25)
    assert not Message.objects.exists()

    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=2, hours=23))
    assert not Message.objects.exists()
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=3, hours=1))
    message = Message.objects.get()
    assert (message.body, message.recipient, message.status) == ("林晓，新品已到店", newcomer.external_id, "queued")
    assert delivery.deliver_due(in_brand.tenant, T0 + timedelta(days=3, hours=1)) == {"sent": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)


def test_the_same_run_enrols_nobody_twice(in_brand):
    member(in_brand)
    campaign(in_brand, [TASK])
    run = full_run(in_brand, T0)
    services.enrol_from_run(in_brand.tenant, run.pk, T0)
    assert list(services.enrol_from_run(in_brand.tenant, run.pk, T0).values()) == [0]
    assert Enrolment.objects.count() == 1


def test_a_campaign_with_reentry_takes_a_member_again_only_after_the_days_have_passed(in_brand):
    someone = member(in_brand)
    again = campaign(in_brand, [TASK], trigger="schedule", schedule="daily", trigger_stage="", reentry_days=7)
    assert services.enrol_daily(in_brand.tenant, T0) == {again.pk: 1}
    assert services.enrol_daily(in_brand.tenant, T0 + timedelta(hours=3)) == {}
    assert services.enrol_daily(in_brand.tenant, T0 + timedelta(days=1)) == {again.pk: 0}
    assert services.enrol_daily(in_brand.tenant, T0 + timedelta(days=7, hours=1)) == {again.pk: 1}
    assert Enrolment.objects.filter(member=someone).count() == 2


def test_running_a_step_batch_twice_creates_one_task_one_message_and_one_coupon(in_brand):
    gift = template(in_brand, per_member_limit=None)
    member(in_brand, name="周敏")
    campaign(in_brand, [
        {**TASK, "coupon_template": gift, "script": "{name}，券码 {coupon_code}"},
        {"delay_days": 0, "action": "message", "channel": "console", "script": "hi {name}"},
        {"delay_days": 0, "action": "coupon", "coupon_template": gift},
    ])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    settings = services.outreach_settings(in_brand.tenant)
    enrolment_ids = list(Enrolment.objects.values_list("pk", flat=True))
    steps = list(Enrolment.objects.get().campaign.steps.all())
    for _attempt in range(2):
        for step in steps:
            services.run_step_batch(in_brand.tenant, settings, step, enrolment_ids, T0 + timedelta(hours=1))
    services.run_due_steps(in_brand.tenant, T0 + timedelta(hours=2))

    assert GuideTask.objects.count() == 1
    assert Message.objects.count() == 1
    assert Coupon.objects.count() == 2  # one attached to the task, one issued by the coupon step
    task = GuideTask.objects.get()
    assert task.script == f"周敏，券码 {task.coupon.display_code}"
    assert StepRun.objects.filter(status="done").count() == 3


def test_at_most_two_touches_per_member_in_seven_days_across_campaigns(in_brand):
    busy = member(in_brand)
    campaign(in_brand, [TASK, {**TASK, "script": "second"}], name="first")
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    third = campaign(in_brand, [{**TASK, "script": "third"}], name="third", trigger="schedule", schedule="daily",
                     trigger_stage="")
    services.enrol_daily(in_brand.tenant, T0)
    services.run_due_steps(in_brand.tenant, T0 + timedelta(hours=1))

    assert GuideTask.objects.filter(member=busy).count() == 2
    held = StepRun.objects.get(status="held")
    assert held.reason == "contact_cap" and held.campaign_id == third.pk
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=3))
    assert StepRun.objects.get(campaign=third).status == "held"
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=7, hours=2))
    assert StepRun.objects.get(campaign=third).status == "done"
    assert StepRun.objects.get(campaign=third).reason == ""
    assert GuideTask.objects.filter(member=busy).count() == 3


def test_a_step_held_for_two_weeks_is_skipped_rather_than_sent_late(in_brand):
    member(in_brand)
    campaign(in_brand, [TASK, {**TASK, "script": "2"}, {**TASK, "script": "3"}])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    services.run_due_steps(in_brand.tenant, T0)
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=1))
    assert StepRun.objects.filter(status="held").count() == 1
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=14, hours=1))
    assert StepRun.objects.get(reason__in=["held_too_long"]).status == "skipped"


def test_messages_in_quiet_hours_wait_for_the_morning_and_tasks_do_not(in_brand):
    member(in_brand)
    night = at("2026-03-02 22:30")
    campaign(in_brand, [TASK, {**MESSAGE, "delay_days": 0}])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, night).pk, night)
    services.run_due_steps(in_brand.tenant, night)

    assert GuideTask.objects.count() == 1
    held = StepRun.objects.get(status="held")
    assert (held.reason, held.next_at) == ("quiet_hours", at("2026-03-03 09:00"))
    services.run_due_steps(in_brand.tenant, at("2026-03-03 08:59"))
    assert not Message.objects.exists()
    services.run_due_steps(in_brand.tenant, at("2026-03-03 09:00"))
    assert Message.objects.count() == 1 and StepRun.objects.filter(status="done").count() == 2


def test_promotional_steps_leave_members_who_bought_recently_alone(in_brand):
    buyer, quiet = member(in_brand), member(in_brand)
    order(in_brand, buyer, T0 - timedelta(days=2))
    order(in_brand, quiet, T0 - timedelta(days=40))
    campaign(in_brand, [{**TASK, "promotional": True}], trigger="schedule", schedule="daily", trigger_stage="")
    services.enrol_daily(in_brand.tenant, T0)
    result = services.run_due_steps(in_brand.tenant, T0)

    assert result.reasons == {"recent_buyer": 1}
    assert list(GuideTask.objects.values_list("member_id", flat=True)) == [quiet.pk]
    assert StepRun.objects.get(member=buyer).get_reason_display() == "近期已购买：不打扰"


def test_a_member_who_buys_leaves_a_campaign_that_ends_on_purchase(in_brand):
    buyer, other = member(in_brand), member(in_brand)
    campaign(in_brand, [TASK, {**TASK, "delay_days": 3, "script": "later"}], exit_on_purchase=True)
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    services.run_due_steps(in_brand.tenant, T0)
    order(in_brand, buyer, T0 + timedelta(days=1))
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=3, hours=1))

    assert Enrolment.objects.get(member=buyer).left_reason == "purchase"
    assert GuideTask.objects.filter(member=buyer).count() == 1
    assert GuideTask.objects.filter(member=other).count() == 2


def test_a_step_that_skips_buyers_records_why(in_brand):
    buyer = member(in_brand)
    campaign(in_brand, [{**TASK, "delay_days": 2, "skip_if_bought": True}])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    order(in_brand, buyer, T0 + timedelta(days=1))
    services.run_due_steps(in_brand.tenant, T0 + timedelta(days=2))
    assert StepRun.objects.get().reason == "bought_since"
    assert not GuideTask.objects.exists()


def test_a_member_without_a_guide_gets_no_task_and_the_step_says_so(in_brand):
    member(in_brand, owner_guide=None)
    campaign(in_brand, [TASK])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    services.run_due_steps(in_brand.tenant, T0)
    assert StepRun.objects.get().reason == "no_guide"


def test_a_tag_step_tags_the_members(in_brand):
    someone = member(in_brand)
    group = TagGroup.objects.create(tenant=in_brand.tenant, name="SOP")
    welcomed = Tag.objects.create(tenant=in_brand.tenant, group=group, name="已欢迎")
    campaign(in_brand, [{"delay_days": 0, "action": "add_tag", "tag": welcomed}])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    services.run_due_steps(in_brand.tenant, T0)
    assert MemberTag.objects.filter(member=someone, tag=welcomed, source="campaign").exists()


def test_variants_split_the_audience_stably_and_the_control_gets_nothing(in_brand):
    ids = many_members(in_brand, 400)
    split = campaign(in_brand, [{**TASK, "variant": "A"}, {**TASK, "variant": "B", "script": "B"}],
                     variants=[{"key": "A", "weight": 45}, {"key": "B", "weight": 45}], control_pct=10)
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    arms = dict(Enrolment.objects.values_list("member_id", "variant"))
    assert set(arms) == set(ids)
    shares = {key: list(arms.values()).count(key) for key in ("A", "B", "control")}
    assert 140 <= shares["A"] <= 220 and 140 <= shares["B"] <= 220 and 20 <= shares["control"] <= 65
    for m in ids[:20]:
        bucket = services.bucket_of(split, m)
        assert arms[m] == ("control" if bucket < 10 else "A" if bucket < 55 else "B")

    services.run_due_steps(in_brand.tenant, T0)
    tasked = dict(GuideTask.objects.values_list("member_id", "script"))
    assert not any(arms[m] == "control" for m in tasked)
    assert all((tasked[m] == "B") == (arms[m] == "B") for m in tasked)
    assert len(tasked) == shares["A"] + shares["B"]


def test_a_birthday_campaign_enrols_the_members_born_today_once_a_day(in_brand):
    born = member(in_brand, birthday=T0.date().replace(year=1990))
    member(in_brand, birthday=(T0 + timedelta(days=1)).date().replace(year=1990))
    gift = template(in_brand, name="生日券")
    birthday = campaign(in_brand, [{**TASK, "coupon_template": gift, "script": "{name}生日快乐，{coupon}"}],
                        trigger="birthday", trigger_stage="", reentry_days=300)
    assert services.enrol_daily(in_brand.tenant, T0) == {birthday.pk: 1}
    assert services.enrol_daily(in_brand.tenant, T0) == {}
    services.run_due_steps(in_brand.tenant, T0)
    assert GuideTask.objects.get().member_id == born.pk
    assert GuideTask.objects.get().script == "会员生日快乐，生日券"


def test_joined_without_a_purchase_enrols_only_those_who_never_bought(in_brand):
    waiting = member(in_brand, joined_at=T0 - timedelta(days=60))
    bought = member(in_brand, joined_at=T0 - timedelta(days=60))
    member(in_brand, joined_at=T0 - timedelta(days=10))
    order(in_brand, bought, T0 - timedelta(days=50))
    nurture = campaign(in_brand, [TASK], trigger="joined_no_purchase", trigger_days=60, trigger_stage="")
    services.enrol_daily(in_brand.tenant, T0)
    assert list(Enrolment.objects.filter(campaign=nurture).values_list("member_id", flat=True)) == [waiting.pk]


def test_a_paused_campaign_runs_no_steps(in_brand):
    member(in_brand)
    paused = campaign(in_brand, [TASK])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)
    paused.status = "paused"
    paused.save()
    services.run_due_steps(in_brand.tenant, T0)
    assert not GuideTask.objects.exists()


def test_another_brands_campaigns_and_members_are_untouched(brand, other_brand):
    with other_brand.scope():
        member(other_brand)
        theirs = campaign(other_brand, [TASK])
        run = full_run(other_brand, T0)
    with brand.scope():
        member(brand)
        campaign(brand, [TASK])
        services.enrol_from_run(brand.tenant, full_run(brand, T0).pk, T0)
        services.enrol_from_run(brand.tenant, run.pk, T0)
        services.run_due_steps(brand.tenant, T0)
        assert GuideTask.objects.count() == 1
    with other_brand.scope():
        assert not Enrolment.objects.filter(campaign=theirs).exists()
        assert not GuideTask.objects.exists()


def test_a_wecom_message_goes_to_the_members_wecom_contact_on_behalf_of_their_guide(in_brand):
    in_brand.guide.wecom_userid = "zhangsan"
    in_brand.guide.save(update_fields=["wecom_userid"])
    contact = member(in_brand, name="林晓")
    contact.wecom_external_userid = "wmCONTACT1"
    contact.save(update_fields=["wecom_external_userid"])
    no_wecom = member(in_brand, name="周敏")
    campaign(in_brand, [{**MESSAGE, "delay_days": 0, "channel": "wecom"}])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)

    services.run_due_steps(in_brand.tenant, T0 + timedelta(hours=1))

    message = Message.objects.get()
    assert (message.member_id, message.recipient, message.body) == (contact.pk, "wmCONTACT1", "林晓，新品已到店")
    skipped = StepRun.objects.get(member=no_wecom)
    assert skipped.status == "skipped" and skipped.reason


def test_a_member_day_campaign_enrols_its_audience_only_on_the_brands_member_day(in_brand):
    from members.models import MemberDay

    MemberDay.objects.create(tenant=in_brand.tenant, name="会员日", day_of_month=18)
    member(in_brand)
    member_day = campaign(in_brand, [TASK], trigger="schedule", schedule="member_day", trigger_stage="", reentry_days=1)

    assert services.enrol_daily(in_brand.tenant, at("2026-03-17 10:00")) == {}
    assert services.enrol_daily(in_brand.tenant, at("2026-03-18 10:00")) == {member_day.pk: 1}
    assert services.enrol_daily(in_brand.tenant, at("2026-03-19 10:00")) == {}
    assert Enrolment.objects.filter(campaign=member_day).count() == 1


def test_an_email_step_goes_to_the_address_in_the_members_attributes(in_brand):
    reader = member(in_brand, name="林晓", attributes={"email": "lin@example.com"})
    member(in_brand, name="周敏")
    campaign(in_brand, [{**MESSAGE, "delay_days": 0, "channel": "email"}])
    services.enrol_from_run(in_brand.tenant, full_run(in_brand, T0).pk, T0)

    services.run_due_steps(in_brand.tenant, T0 + timedelta(hours=1))

    assert list(Message.objects.values_list("member_id", "recipient")) == [(reader.pk, "lin@example.com")]
