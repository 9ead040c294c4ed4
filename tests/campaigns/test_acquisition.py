"""Joins through live codes: the assignment rules, caps and hours, what a join gives the member,
and that a replayed join does nothing twice."""
import json
from datetime import timedelta

import pytest

from campaigns import acquisition, services
from campaigns.models import (
    Enrolment, GuideTask, LiveCode, LiveCodeDay, LiveCodeGuideDay, LiveCodeJoin, Message, OutreachSettings,
)
from coupons.models import Coupon
from members.models import Event, Member
from scrm.models import Staff
from scrm.services import create_staff
from tagging.models import MemberTag, Tag, TagChange, TagGroup

from ..conftest import PASSWORD
from .helpers import at, campaign, member, template
from .stub_server import Provider

pytestmark = pytest.mark.django_db

NOW = at("2026-03-02 10:00")  # a Monday morning in Shanghai


def third_guide(brand, username="acme_guide3", name="导购丙", **fields):
    return create_staff(brand.tenant, username, PASSWORD, name, Staff.Role.GUIDE, [brand.store], **fields)


def make_code(brand, **data):
    values = {"name": "上海一店收银台", "channel_type": "store_cashier", "store": brand.store,
              "pool": [brand.guide, brand.guide2], **data}
    return acquisition.save_live_code(brand.tenant, values, as_of=NOW)


def join(code, mobile, as_of=NOW, **kwargs):
    return acquisition.join(code, door="api", key=f"test:{code.pk}:{mobile}", mobile=mobile, as_of=as_of, **kwargs)


def mobiles(n, start=0):
    return [f"139{i:08d}" for i in range(start, start + n)]


# ---------------------------------------------------------------- assignment rules

def test_round_robin_hands_joins_to_the_pool_in_order_and_carries_on_where_it_stopped(in_brand):
    third = third_guide(in_brand)
    code = make_code(in_brand, pool=[in_brand.guide, in_brand.guide2, third])
    owners = [join(code, m).guide for m in mobiles(7)]
    assert owners == [in_brand.guide, in_brand.guide2, third] * 2 + [in_brand.guide]
    assert LiveCode.objects.get(pk=code.pk).rr_position == 0


def test_a_guide_at_the_daily_cap_overflows_to_the_next_and_then_to_the_backup(in_brand):
    backup = third_guide(in_brand, name="值班导购")
    code = make_code(in_brand, daily_cap=1, backup_guide=backup)
    owners = [join(code, m).guide for m in mobiles(4)]
    assert owners == [in_brand.guide, in_brand.guide2, backup, backup]
    counted = dict(LiveCodeGuideDay.objects.filter(day=NOW.date()).values_list("guide_id", "joins"))
    assert counted == {in_brand.guide.pk: 1, in_brand.guide2.pk: 1, backup.pk: 2}
    # A new local day starts the caps again.
    assert join(code, "13700000001", as_of=at("2026-03-03 00:05")).guide == in_brand.guide


def test_with_every_guide_full_and_no_backup_the_member_joins_without_a_guide(in_brand):
    code = make_code(in_brand, daily_cap=1)
    results = [join(code, m) for m in mobiles(3)]
    assert [r.guide for r in results] == [in_brand.guide, in_brand.guide2, None]
    assert results[2].member.owner_guide_id is None
    assert LiveCodeJoin.objects.get(member=results[2].member).guide is None


def test_least_loaded_gives_the_join_to_the_guide_who_owns_fewest_members(in_brand):
    member(in_brand, owner_guide=in_brand.guide)
    member(in_brand, owner_guide=in_brand.guide)
    member(in_brand, owner_guide=in_brand.guide2)
    code = make_code(in_brand, rule="least_loaded")
    owners = [join(code, m).guide for m in mobiles(3)]
    # guide2 owns 1 (<2): theirs; then 2 each: the pool order decides; then guide2 has fewer again.
    assert owners == [in_brand.guide2, in_brand.guide, in_brand.guide2]


def test_the_fixed_rule_gives_every_join_to_one_guide(in_brand):
    code = make_code(in_brand, rule="fixed", fixed_guide=in_brand.guide2, pool=[])
    assert {join(code, m).guide for m in mobiles(3)} == {in_brand.guide2}


def test_outside_working_hours_joins_go_to_the_backup_guide(in_brand):
    backup = third_guide(in_brand, name="夜班导购")
    code = make_code(in_brand, work_start=at("2026-03-02 09:00").time(), work_end=at("2026-03-02 18:00").time(),
                     backup_guide=backup)
    assert join(code, "13900000001", as_of=at("2026-03-02 08:59")).guide == backup
    assert join(code, "13900000002", as_of=at("2026-03-02 09:00")).guide == in_brand.guide
    assert join(code, "13900000003", as_of=at("2026-03-02 18:00")).guide == backup
    # The round-robin did not move for the backup's joins.
    assert join(code, "13900000004", as_of=at("2026-03-02 12:00")).guide == in_brand.guide2


def test_a_member_who_has_a_guide_keeps_them_unless_the_code_reassigns(in_brand):
    known = member(in_brand, mobile="13800138000", owner_guide=in_brand.guide2)
    code = make_code(in_brand, pool=[in_brand.guide])
    kept = join(code, "13800138000")
    assert (kept.member.pk, kept.guide, kept.new_member, kept.join.guide_changed) == (known.pk, in_brand.guide2, False, False)
    assert not LiveCodeGuideDay.objects.exists()

    moving = make_code(in_brand, name="海报码", channel_type="poster", pool=[in_brand.guide], reassign_existing=True)
    moved = join(moving, "13800138000")
    assert (moved.guide, moved.join.guide_changed) == (in_brand.guide, True)
    assert Member.objects.get(pk=known.pk).owner_guide == in_brand.guide


# ---------------------------------------------------------------- what a join gives

def test_a_new_member_gets_the_codes_channel_store_tags_coupon_and_a_contact_added_event(in_brand):
    group = TagGroup.objects.create(tenant=in_brand.tenant, name="来源渠道")
    tag = Tag.objects.create(tenant=in_brand.tenant, group=group, name="收银台")
    coupon_template = template(in_brand)
    code = make_code(in_brand, tags=[tag], welcome_coupon=coupon_template)

    result = join(code, "13800138000", name="王芳")

    fresh = Member.objects.get(pk=result.member.pk)
    assert result.new_member and result.join.door == "api"
    assert (fresh.name, fresh.mobile, fresh.source_channel, fresh.home_store, fresh.joined_at, fresh.owner_guide) == (
        "王芳", "13800138000", "store_cashier", in_brand.store, NOW, in_brand.guide)
    assert fresh.external_id.startswith("LC")
    assert MemberTag.objects.filter(member=fresh, tag=tag).exists()
    assert TagChange.objects.get(member=fresh).action == "added"
    coupon = Coupon.objects.get(member=fresh)
    assert (coupon.template, coupon.source, coupon.guide_id, result.coupon) == (coupon_template, "live_code", in_brand.guide.pk, coupon)
    event = Event.objects.get(member=fresh)
    assert (event.type, event.occurred_at, event.properties["live_code"], event.properties["door"]) == (
        "contact_added", NOW, code.pk, "api")


def test_a_replayed_join_gives_no_second_coupon_message_event_or_cap_count(in_brand, django_capture_on_commit_callbacks):
    code = make_code(in_brand, welcome_coupon=template(in_brand), welcome_message="{name}您好，我是{guide}", daily_cap=5)
    with django_capture_on_commit_callbacks(execute=True):
        first = join(code, "13800138000", name="王芳")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = join(code, "13800138000", name="王芳", as_of=NOW + timedelta(minutes=3))
    assert again.replayed and not first.replayed
    assert (again.join.pk, again.member.pk, again.coupon.pk, again.guide) == (first.join.pk, first.member.pk, first.coupon.pk, first.guide)
    assert callbacks == []
    assert LiveCodeJoin.objects.count() == 1
    assert Coupon.objects.count() == 1
    assert Message.objects.count() == 1
    assert Event.objects.count() == 1
    assert LiveCodeGuideDay.objects.get().joins == 1
    assert LiveCode.objects.get(pk=code.pk).rr_position == 0


def test_the_same_member_joining_the_code_again_under_another_key_gets_no_second_welcome_coupon(in_brand):
    code = make_code(in_brand, welcome_coupon=template(in_brand))
    acquisition.join(code, door="api", key="k1", mobile="13800138000", as_of=NOW)
    second = acquisition.join(code, door="landing", key="k2", mobile="13800138000", as_of=NOW + timedelta(days=1))
    assert not second.replayed
    assert Coupon.objects.count() == 1 and second.coupon is not None


def test_the_welcome_sms_fills_the_variables_and_goes_out_through_the_gateway(in_brand, django_capture_on_commit_callbacks):
    with Provider() as gateway:
        gateway.answer("/sms", (200, {"code": "OK", "message_id": "sms-1"}))
        OutreachSettings.objects.create(tenant=in_brand.tenant, sms_url=gateway.url + "/sms", sms_signature="ACME")
        code = make_code(in_brand, welcome_coupon=template(in_brand),
                         welcome_message="{name}您好，我是{store}的{guide}，新客券{coupon_code}已到账")
        with django_capture_on_commit_callbacks(execute=True):
            result = join(code, "13800138000", name="王芳")
        sent = json.loads(gateway.calls("/sms")[0]["body"])
    assert sent["mobile"] == "13800138000"
    assert sent["content"] == f"【ACME】王芳您好，我是acme store 1的导购甲，新客券{result.coupon.display_code}已到账"
    message = Message.objects.get()
    assert (message.channel, message.status, message.member_id) == ("sms", "sent", result.member.pk)


def test_without_an_sms_gateway_the_welcome_goes_to_the_console_sender(in_brand, django_capture_on_commit_callbacks):
    code = make_code(in_brand, welcome_message="欢迎{name}")
    with django_capture_on_commit_callbacks(execute=True):
        join(code, "13800138000", name="王芳")
    message = Message.objects.get()
    assert (message.channel, message.body, message.status) == ("console", "欢迎王芳", "sent")


@pytest.mark.parametrize("fields, reason", [
    ({"status": "paused"}, "paused"),
    ({"status": "archived"}, "archived"),
    ({"starts_at": NOW + timedelta(hours=1)}, "not_started"),
    ({"ends_at": NOW}, "ended"),
])
def test_a_code_that_is_stopped_or_outside_its_window_refuses_joins(in_brand, fields, reason):
    code = make_code(in_brand, **fields)
    with pytest.raises(acquisition.AcquisitionError) as refused:
        join(code, "13800138000")
    assert refused.value.code == reason and refused.value.message
    assert not Member.objects.exists() and not LiveCodeJoin.objects.exists()


def test_a_join_naming_nobody_or_a_bad_mobile_is_refused_on_the_mobile_field(in_brand):
    code = make_code(in_brand)
    for mobile in (None, "12345"):
        with pytest.raises(acquisition.AcquisitionError) as refused:
            join(code, mobile)
        assert "mobile" in refused.value.errors


# ---------------------------------------------------------------- campaigns

def test_a_live_code_joined_campaign_enrols_the_member_and_runs_its_first_step(in_brand, django_capture_on_commit_callbacks):
    code = make_code(in_brand)
    other = make_code(in_brand, name="包裹卡", channel_type="parcel_card")
    step = {"delay_days": 0, "action": "guide_task", "script": "{name}刚加了您，打个招呼"}
    any_code = campaign(in_brand, [step], name="新客欢迎", trigger="live_code_joined", trigger_stage="")
    this_code = campaign(in_brand, [step], name="收银台新客", trigger="live_code_joined", trigger_stage="",
                         trigger_live_code=code)
    parcel_only = campaign(in_brand, [step], name="包裹卡新客", trigger="live_code_joined", trigger_stage="",
                           trigger_live_code=other)
    with django_capture_on_commit_callbacks(execute=True):
        result = join(code, "13800138000", name="王芳")
    enrolled = set(Enrolment.objects.filter(member=result.member).values_list("campaign_id", flat=True))
    assert enrolled == {any_code.pk, this_code.pk}
    assert parcel_only.pk not in enrolled
    tasks = GuideTask.objects.filter(member=result.member)
    assert {t.script for t in tasks} == {"王芳刚加了您，打个招呼"}
    assert {t.guide for t in tasks} == {in_brand.guide}


def test_the_daily_run_does_not_enrol_everyone_in_live_code_joined_campaigns(in_brand):
    member(in_brand)
    member(in_brand)
    campaign(in_brand, [{"delay_days": 0, "action": "guide_task", "script": "hi"}], trigger="live_code_joined",
             trigger_stage="")
    services.enrol_daily(in_brand.tenant, NOW)
    assert not Enrolment.objects.exists()


# ---------------------------------------------------------------- saving a code

def test_saving_a_code_refuses_bad_fields_naming_each(in_brand):
    automatic = TagGroup.objects.create(tenant=in_brand.tenant, name="消费频次", kind="automatic")
    kept = Tag.objects.create(tenant=in_brand.tenant, group=automatic, name="高频", rule={"all": []})
    with pytest.raises(acquisition.AcquisitionError) as refused:
        make_code(in_brand, name=" ", rule="fixed", pool=[], work_start=NOW.time(), ends_at=NOW,
                  starts_at=NOW + timedelta(days=1), welcome_message="{name} {points}", tags=[kept])
    assert set(refused.value.errors) == {"name", "fixed_guide", "work_end", "ends_at", "welcome_message", "tags"}
    with pytest.raises(acquisition.AcquisitionError) as refused:
        make_code(in_brand, pool=[])
    assert set(refused.value.errors) == {"pool"}
    assert not LiveCode.objects.exists()


def test_saving_refuses_another_brands_guides_and_stores_on_their_fields(brand, other_brand):
    with brand.scope():
        with pytest.raises(acquisition.AcquisitionError) as refused:
            make_code(brand, store=other_brand.store, pool=[brand.guide, other_brand.guide],
                      backup_guide=other_brand.guide2)
        assert set(refused.value.errors) == {"store", "pool", "backup_guide"}


def test_changing_the_pool_keeps_the_printed_code_and_restarts_the_round(in_brand):
    third = third_guide(in_brand)
    code = make_code(in_brand)
    printed = code.code
    join(code, "13900000001")
    saved = acquisition.save_live_code(in_brand.tenant, {"pool": [third, in_brand.guide]}, live_code=code, as_of=NOW)
    assert saved.code == printed
    assert list(saved.pool.values_list("guide_id", flat=True)) == [third.pk, in_brand.guide.pk]
    assert join(saved, "13900000002").guide == third


# ---------------------------------------------------------------- landing page views

def test_landing_page_views_are_counted_per_local_day(in_brand):
    code = make_code(in_brand)
    for _i in range(3):
        acquisition.record_landing_view(code, NOW)
    acquisition.record_landing_view(code, at("2026-03-03 00:30"))  # still 2 March in UTC
    days = dict(LiveCodeDay.objects.filter(live_code=code).values_list("day", "views"))
    assert days == {NOW.date(): 3, at("2026-03-03 00:30").date(): 1}
