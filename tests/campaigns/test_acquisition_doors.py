"""Two of the three doors into a live code: the landing page with its SMS one-time code (the
gateway is a local HTTP server; the code is read from the SMS it got) and WeCom's add_external_contact
(the WeCom API is a local fake server)."""
import json
import re
from datetime import timedelta

import pytest

from campaigns import acquisition
from campaigns.models import JoinVerification, LiveCode, LiveCodeJoin, Message, OutreachSettings
from coupons.models import Coupon
from members.models import Event, Member
from scrm.models import Staff

from .fake_wecom import FakeWeCom
from .helpers import at, template
from .stub_server import Provider

pytestmark = pytest.mark.django_db

NOW = at("2026-03-02 10:00")


def make_code(brand, **data):
    values = {"name": "包裹卡", "channel_type": "parcel_card", "store": brand.store,
              "pool": [brand.guide, brand.guide2], **data}
    return acquisition.save_live_code(brand.tenant, values, as_of=NOW)


@pytest.fixture
def gateway(in_brand):
    with Provider() as running:
        running.answer("/sms", (200, {"code": "OK", "message_id": "sms-1"}))
        OutreachSettings.objects.create(tenant=in_brand.tenant, sms_url=running.url + "/sms")
        yield running


def sms_code(gateway, index=-1):
    content = json.loads(gateway.calls("/sms")[index]["body"])["content"]
    return re.search(r"\b(\d{6})\b", content).group(1)


def ask(code, mobile, as_of, callbacks):
    with callbacks(execute=True):
        return acquisition.start_verification(code, mobile, as_of)


# ---------------------------------------------------------------- landing page

def test_the_landing_page_sends_a_code_by_sms_and_joins_when_it_is_confirmed(
    in_brand, gateway, django_capture_on_commit_callbacks
):
    code = make_code(in_brand, welcome_coupon=template(in_brand))
    ask(code, "138 0013 8000", NOW, django_capture_on_commit_callbacks)
    sent = json.loads(gateway.calls("/sms")[0]["body"])
    assert sent["mobile"] == "13800138000"
    secret = sms_code(gateway)
    verification = JoinVerification.objects.get()
    assert secret not in verification.code_hash and len(verification.code_hash) == 64

    wrong = "000000" if secret != "000000" else "111111"
    with pytest.raises(acquisition.AcquisitionError) as refused:
        acquisition.confirm_verification(code, "13800138000", wrong, NOW + timedelta(seconds=30))
    assert refused.value.code == "wrong_code" and "code" in refused.value.errors
    assert not Member.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        result = acquisition.confirm_verification(code, "13800138000", secret, NOW + timedelta(seconds=40))
    assert result.new_member and result.guide == in_brand.guide
    assert (result.join.door, result.member.mobile, result.member.source_channel) == ("landing", "13800138000", "parcel_card")
    assert Coupon.objects.filter(member=result.member).count() == 1

    with pytest.raises(acquisition.AcquisitionError) as used:
        acquisition.confirm_verification(code, "13800138000", secret, NOW + timedelta(seconds=50))
    assert used.value.code == "no_code"


def test_a_second_verified_join_of_the_same_number_shows_the_first_join_again(
    in_brand, gateway, django_capture_on_commit_callbacks
):
    code = make_code(in_brand, welcome_coupon=template(in_brand))
    ask(code, "13800138000", NOW, django_capture_on_commit_callbacks)
    first = acquisition.confirm_verification(code, "13800138000", sms_code(gateway), NOW + timedelta(seconds=10))
    ask(code, "13800138000", NOW + timedelta(minutes=5), django_capture_on_commit_callbacks)
    again = acquisition.confirm_verification(code, "13800138000", sms_code(gateway), NOW + timedelta(minutes=6))
    assert again.replayed and again.join.pk == first.join.pk and again.guide == first.guide
    assert LiveCodeJoin.objects.count() == 1 and Coupon.objects.count() == 1


def test_a_code_expires_after_ten_minutes(in_brand, gateway, django_capture_on_commit_callbacks):
    code = make_code(in_brand)
    ask(code, "13800138000", NOW, django_capture_on_commit_callbacks)
    with pytest.raises(acquisition.AcquisitionError) as refused:
        acquisition.confirm_verification(code, "13800138000", sms_code(gateway), NOW + timedelta(minutes=10))
    assert refused.value.code == "expired"
    assert not LiveCodeJoin.objects.exists()


def test_five_wrong_codes_lock_the_code_even_for_the_right_one(in_brand, gateway, django_capture_on_commit_callbacks):
    code = make_code(in_brand)
    ask(code, "13800138000", NOW, django_capture_on_commit_callbacks)
    secret = sms_code(gateway)
    wrong = "000000" if secret != "000000" else "111111"
    reasons = []
    for _i in range(5):
        with pytest.raises(acquisition.AcquisitionError) as refused:
            acquisition.confirm_verification(code, "13800138000", wrong, NOW)
        reasons.append(refused.value.code)
    assert reasons == ["wrong_code"] * 4 + ["too_many_attempts"]
    with pytest.raises(acquisition.AcquisitionError) as refused:
        acquisition.confirm_verification(code, "13800138000", secret, NOW)
    assert refused.value.code == "too_many_attempts"
    assert not LiveCodeJoin.objects.exists()


def test_codes_are_sent_at_most_once_a_minute_and_five_times_an_hour_per_number(
    in_brand, gateway, django_capture_on_commit_callbacks
):
    code = make_code(in_brand)
    ask(code, "13800138000", NOW, django_capture_on_commit_callbacks)
    with pytest.raises(acquisition.AcquisitionError) as refused:
        ask(code, "13800138000", NOW + timedelta(seconds=20), django_capture_on_commit_callbacks)
    assert refused.value.code == "rate_limited" and refused.value.retry_after == 40
    for minute in range(1, 5):
        ask(code, "13800138000", NOW + timedelta(minutes=minute), django_capture_on_commit_callbacks)
    with pytest.raises(acquisition.AcquisitionError) as refused:
        ask(code, "13800138000", NOW + timedelta(minutes=30), django_capture_on_commit_callbacks)
    assert refused.value.code == "rate_limited"
    ask(code, "13900139000", NOW + timedelta(minutes=30), django_capture_on_commit_callbacks)
    ask(code, "13800138000", NOW + timedelta(hours=1, seconds=1), django_capture_on_commit_callbacks)
    assert len(gateway.calls("/sms")) == 7


def test_without_an_sms_gateway_the_code_goes_to_the_console_sender(in_brand, django_capture_on_commit_callbacks):
    code = make_code(in_brand)
    ask(code, "13800138000", NOW, django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert (message.channel, message.recipient, message.status) == ("console", "13800138000", "sent")
    assert re.search(r"\b\d{6}\b", message.body)


def test_a_paused_code_sends_no_sms(in_brand, gateway, django_capture_on_commit_callbacks):
    code = make_code(in_brand, status="paused")
    with pytest.raises(acquisition.AcquisitionError) as refused:
        ask(code, "13800138000", NOW, django_capture_on_commit_callbacks)
    assert refused.value.code == "paused"
    assert gateway.calls("/sms") == [] and not JoinVerification.objects.exists()


# ---------------------------------------------------------------- WeCom

@pytest.fixture
def wecom(in_brand):
    with FakeWeCom() as fake:
        OutreachSettings.objects.create(
            tenant=in_brand.tenant, wecom_api_base=fake.base_url, wecom_corp_id=fake.corp_id, wecom_secret=fake.secret,
        )
        Staff.objects.filter(pk=in_brand.guide.pk).update(wecom_userid="zhangwei")
        Staff.objects.filter(pk=in_brand.guide2.pk).update(wecom_userid="lina")
        in_brand.guide.refresh_from_db()
        in_brand.guide2.refresh_from_db()
        yield fake


def test_saving_a_code_creates_its_wecom_contact_way_and_a_pool_change_updates_it(in_brand, wecom):
    code = make_code(in_brand)
    way = wecom.contact_ways[code.wecom_config_id]
    assert (way["state"], way["user"]) == (code.code, ["zhangwei", "lina"])
    assert code.wecom_qr_url and code.wecom_synced_at == NOW and code.wecom_sync_error == ""
    printed, config = code.code, code.wecom_config_id
    acquisition.save_live_code(in_brand.tenant, {"pool": [in_brand.guide2]}, live_code=code, as_of=NOW)
    fresh = LiveCode.objects.get(pk=code.pk)
    assert (fresh.code, fresh.wecom_config_id) == (printed, config)
    assert wecom.contact_ways[config]["user"] == ["lina"]
    assert len(wecom.calls("/cgi-bin/externalcontact/add_contact_way")) == 1


def test_a_wecom_failure_keeps_the_code_and_says_why(in_brand, wecom):
    wecom.fail_next(40058, path="/cgi-bin/externalcontact/add_contact_way")
    code = make_code(in_brand)
    assert LiveCode.objects.filter(pk=code.pk).exists()
    assert "40058" in LiveCode.objects.get(pk=code.pk).wecom_sync_error
    assert acquisition.sync_contact_way(code, NOW) is True
    assert LiveCode.objects.get(pk=code.pk).wecom_config_id


def test_a_wecom_add_with_the_codes_state_joins_with_the_guide_added_and_sends_the_welcome_once(
    in_brand, wecom, django_capture_on_commit_callbacks
):
    code = make_code(in_brand, welcome_coupon=template(in_brand), welcome_message="{name}您好，我是{guide}，券码{coupon_code}")
    callback = {"state": code.code, "external_userid": "wmEXT0001", "userid": "lina", "welcome_code": "WELCOME-1",
                "as_of": NOW, "name": "王芳"}
    with django_capture_on_commit_callbacks(execute=True):
        result = acquisition.join_from_wecom(in_brand.tenant, **callback)
    assert (result.guide, result.join.door, result.new_member) == (in_brand.guide2, "wecom", True)
    assert result.member.wecom_external_userid == "wmEXT0001"
    assert [m["text"]["content"] for m in wecom.welcome_messages] == [
        f"王芳您好，我是导购乙，券码{result.coupon.display_code}"]
    message = Message.objects.get()
    assert (message.channel, message.status, message.recipient, message.sender_ref) == ("wecom", "sent", "wmEXT0001", "lina")

    # WeCom sends the callback again: nothing happens twice.
    with django_capture_on_commit_callbacks(execute=True):
        again = acquisition.join_from_wecom(in_brand.tenant, **callback)
    assert again.replayed and again.join.pk == result.join.pk
    assert len(wecom.welcome_messages) == 1
    assert (Coupon.objects.count(), Message.objects.count(), Event.objects.count()) == (1, 1, 1)


def test_a_failed_wecom_welcome_is_recorded_and_the_join_stands(in_brand, wecom, django_capture_on_commit_callbacks):
    code = make_code(in_brand, welcome_message="欢迎{name}")
    wecom.fail_next(41051, path="/cgi-bin/externalcontact/send_welcome_msg")
    with django_capture_on_commit_callbacks(execute=True):
        result = acquisition.join_from_wecom(in_brand.tenant, state=code.code, external_userid="wmEXT0002",
                                             userid="zhangwei", welcome_code="WELCOME-2", as_of=NOW)
    assert LiveCodeJoin.objects.filter(pk=result.join.pk).exists()
    message = Message.objects.get()
    assert message.status == "dead" and "41051" in message.last_error


def test_a_wecom_add_without_a_known_state_records_the_contact_with_the_guide_added(in_brand, wecom):
    result = acquisition.join_from_wecom(in_brand.tenant, state="", external_userid="wmEXT0003", userid="zhangwei",
                                         welcome_code="W3", as_of=NOW, name="李雷")
    assert result.join is None and result.new_member and result.guide == in_brand.guide
    fresh = Member.objects.get(wecom_external_userid="wmEXT0003")
    assert (fresh.name, fresh.owner_guide, fresh.source_channel) == ("李雷", in_brand.guide, "wecom")
    assert Event.objects.get(member=fresh).type == "contact_added"
    # The same contact added again, with another guide: the member keeps their guide.
    again = acquisition.add_wecom_contact(in_brand.tenant, external_userid="wmEXT0003", userid="lina",
                                          as_of=NOW + timedelta(days=1))
    assert again.member.pk == fresh.pk and again.guide == in_brand.guide and not again.new_member
    assert Event.objects.filter(member=fresh).count() == 2
    assert not LiveCodeJoin.objects.exists()


def test_another_brands_state_is_not_a_join_through_their_code(brand, other_brand):
    with other_brand.scope():
        theirs = make_code(other_brand)
    with brand.scope():
        result = acquisition.join_from_wecom(brand.tenant, state=theirs.code, external_userid="wmEXT0004",
                                             userid="", welcome_code="W4", as_of=NOW)
        assert result.join is None
        assert Member.objects.filter(wecom_external_userid="wmEXT0004").exists()
    with other_brand.scope():
        assert not LiveCodeJoin.objects.exists()
        assert not Member.objects.exists()
