"""The WeCom connector: message crypto against WeCom's published samples, the API client against
a local WeCom server, and the callback endpoint with each event's effect."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import delivery
from campaigns.models import Campaign, Message, OutreachSettings, WeComCallback, WeComToken
from campaigns.wecom.client import WeComClient, WeComError
from campaigns.wecom.crypto import CryptoError, MsgCrypt, SignatureError
from lifecycle.models import MemberLifecycle
from members.models import ContactStatus, Event, EventType, Member
from members.signals import activity_recorded, members_changed
from scrm.models import Staff
from tests.campaigns.fake_wecom import (  # noqa: F401 - wecom is a fixture
    AES_KEY, CORP_ID, TOKEN, configure, post_callback, wecom,
)
from tests.campaigns.helpers import member

# The URL verification sample (GET) and the message sample (POST) of WeCom's WXBizMsgCrypt SDK.
ECHO = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
ECHO_PLAIN = "1616140317555161061"
MSG = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813", "nonce": "1372623149"}
MSG_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs"
    "3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5g"
    "sijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQ"
    "Uax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyP"
    "IGHBZZIs2pDBS8R07+qN+E7Q=="
)
MSG_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)
OTHER_TOKEN = "rivalToken42"
OTHER_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def sample_crypt():
    return MsgCrypt(TOKEN, AES_KEY, CORP_ID)


def contact(brand, external_userid, guide_userid="zhangsan", **fields):
    """A member who is the WeCom contact of the brand's guide (WeCom user id ``guide_userid``)."""
    with brand.scope():
        Staff.objects.filter(pk=brand.guide.pk).update(wecom_userid=guide_userid)
        made = member(brand, **fields)
        Member.objects.filter(pk=made.pk).update(wecom_external_userid=external_userid)
        made.refresh_from_db()
        return made


def change(change_type, external_userid="wmCUSTOMER1", userid="zhangsan", **more):
    return {"Event": "change_external_contact", "ChangeType": change_type, "UserID": userid,
            "ExternalUserID": external_userid, **more}


def send(client, brand, wecom, fields, token=TOKEN, aes_key=AES_KEY, slug=None):
    params, body = wecom.callback(brand.tenant.slug, token, aes_key, CORP_ID, fields)
    return post_callback(client, slug or brand.tenant.slug, params, body)


def receipts(brand):
    with brand.scope():
        return list(WeComCallback.objects.order_by("pk"))


# ---------------------------------------------------------------- crypto

def test_the_published_url_verification_sample_decrypts_to_its_echo_string():
    plain = sample_crypt().verify_and_decrypt(ECHO["msg_signature"], ECHO["timestamp"], ECHO["nonce"], ECHO["echostr"])
    assert plain == ECHO_PLAIN


def test_the_published_message_sample_verifies_and_decrypts_to_its_xml():
    crypt = sample_crypt()
    assert crypt.sign(MSG["timestamp"], MSG["nonce"], MSG_ENCRYPT) == MSG["msg_signature"]
    assert crypt.verify_and_decrypt(MSG["msg_signature"], MSG["timestamp"], MSG["nonce"], MSG_ENCRYPT) == MSG_PLAIN


@pytest.mark.parametrize("text", ["", "a", "x" * 11, "x" * 12, "x" * 44, "客户删除了导购 🙁" * 9, MSG_PLAIN])
def test_encrypting_then_decrypting_gives_back_the_message(text):
    crypt = sample_crypt()
    encrypted = crypt.encrypt(text)
    assert crypt.decrypt(encrypted) == text
    assert crypt.encrypt(text) != encrypted  # a fresh random prefix each time


def test_a_message_encrypted_for_another_corp_is_refused():
    encrypted = MsgCrypt(TOKEN, AES_KEY, "ww-someone-else").encrypt("<xml/>")
    with pytest.raises(CryptoError, match="another corp"):
        sample_crypt().decrypt(encrypted)


def test_a_changed_signature_or_ciphertext_is_refused():
    crypt = sample_crypt()
    with pytest.raises(SignatureError):
        crypt.verify_and_decrypt("0" * 40, MSG["timestamp"], MSG["nonce"], MSG_ENCRYPT)
    with pytest.raises(SignatureError):
        crypt.verify_and_decrypt(MSG["msg_signature"], "1409659814", MSG["nonce"], MSG_ENCRYPT)
    with pytest.raises(CryptoError):
        crypt.decrypt(MSG_ENCRYPT[:-8] + "AAAAAA==")


# ---------------------------------------------------------------- the endpoint

def test_the_url_verification_handshake_answers_the_published_plaintext(client, brand, wecom):
    configure(brand, wecom)
    response = client.get(f"/hooks/wecom/{brand.tenant.slug}/", ECHO)
    assert response.status_code == 200
    assert response.content.decode() == ECHO_PLAIN


def test_the_handshake_with_a_bad_signature_is_refused(client, brand, wecom):
    configure(brand, wecom)
    response = client.get(f"/hooks/wecom/{brand.tenant.slug}/", {**ECHO, "msg_signature": "f" * 40})
    assert response.status_code == 403
    assert ECHO_PLAIN not in response.content.decode()


def test_an_unknown_brand_slug_is_not_found(client, brand, wecom):
    configure(brand, wecom)
    assert client.get("/hooks/wecom/no-such-brand/", ECHO).status_code == 404
    params, body = wecom.callback("no-such-brand", TOKEN, AES_KEY, CORP_ID, change("del_follow_user"))
    assert post_callback(client, "no-such-brand", params, body).status_code == 404


def test_a_brand_without_callback_settings_answers_not_found(client, brand):
    assert client.get(f"/hooks/wecom/{brand.tenant.slug}/", ECHO).status_code == 404


def test_a_callback_signed_for_one_brand_is_refused_by_another(client, brand, other_brand, wecom):
    configure(brand, wecom)
    configure(other_brand, wecom, token=OTHER_TOKEN, aes_key=OTHER_AES_KEY)
    contact(other_brand, "wmCUSTOMER1")
    response = send(client, brand, wecom, change("del_follow_user"), slug=other_brand.tenant.slug)
    assert response.status_code == 403
    assert receipts(brand) == [] and receipts(other_brand) == []
    with other_brand.scope():
        assert Member.objects.get(wecom_external_userid="wmCUSTOMER1").contact_status == ContactStatus.ACTIVE


def test_a_callback_with_a_bad_signature_changes_nothing(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1")
    params, body = wecom.callback(brand.tenant.slug, TOKEN, AES_KEY, CORP_ID, change("del_follow_user"))
    response = post_callback(client, brand.tenant.slug, {**params, "msg_signature": "0" * 40}, body)
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.contact_status == ContactStatus.ACTIVE
    assert receipts(brand) == []


def test_a_callback_without_signature_parameters_is_a_bad_request(client, brand, wecom):
    configure(brand, wecom)
    _params, body = wecom.callback(brand.tenant.slug, TOKEN, AES_KEY, CORP_ID, change("del_follow_user"))
    assert post_callback(client, brand.tenant.slug, {}, body).status_code == 400


def test_an_oversized_body_is_refused(client, brand, wecom):
    configure(brand, wecom)
    params, body = wecom.callback(brand.tenant.slug, TOKEN, AES_KEY, CORP_ID,
                                  change("del_follow_user", Padding="x" * 70_000))
    response = post_callback(client, brand.tenant.slug, params, body)
    assert response.status_code == 413
    assert receipts(brand) == []


@pytest.mark.parametrize("body", [
    b"not xml at all",
    b"<xml><ToUserName>x</ToUserName></xml>",
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">]><xml><Encrypt>&lol;</Encrypt></xml>',
    b"<xml><Encrypt><![CDATA[%%%not-base64%%%]]></Encrypt></xml>",
])
def test_malformed_bodies_are_refused_without_side_effects(client, brand, wecom, body):
    configure(brand, wecom)
    crypt = sample_crypt()
    import xml.etree.ElementTree as ET

    try:
        encrypted = ET.fromstring(body).findtext("Encrypt") or ""
    except ET.ParseError:
        encrypted = ""
    params = {"msg_signature": crypt.sign("1700000000", "42", encrypted), "timestamp": "1700000000", "nonce": "42"}
    response = post_callback(client, brand.tenant.slug, params, body)
    assert response.status_code == 400
    assert receipts(brand) == []


def test_an_encrypted_payload_that_is_not_xml_is_refused(client, brand, wecom):
    configure(brand, wecom)
    crypt = sample_crypt()
    encrypted = crypt.encrypt("this is not xml")
    params = {"msg_signature": crypt.sign("1700000000", "42", encrypted), "timestamp": "1700000000", "nonce": "42"}
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    assert post_callback(client, brand.tenant.slug, params, body).status_code == 400
    assert receipts(brand) == []


# ---------------------------------------------------------------- events

def test_a_customer_deleting_the_guide_marks_the_member_churned_and_starts_the_churn_campaign(
        client, brand, wecom, django_capture_on_commit_callbacks):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1")
    with brand.scope():
        recall = Campaign.objects.create(tenant=brand.tenant, name="流失召回", status=Campaign.Status.ACTIVE,
                                         trigger="contact_deleted")
    heard = []
    activity_recorded.connect(lambda sender, **kw: heard.append(("activity", kw["member_ids"])), weak=False,
                              dispatch_uid="test-wecom-activity")
    members_changed.connect(lambda sender, **kw: heard.append(("members", kw["member_ids"])), weak=False,
                            dispatch_uid="test-wecom-members")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = send(client, brand, wecom, change("del_follow_user"))
    finally:
        activity_recorded.disconnect(dispatch_uid="test-wecom-activity")
        members_changed.disconnect(dispatch_uid="test-wecom-members")
    assert response.status_code == 200 and response.content == b"success"
    customer.refresh_from_db()
    assert customer.contact_status == ContactStatus.DELETED_BY_CUSTOMER
    assert customer.contact_status_changed_at is not None
    with brand.scope():
        event = Event.objects.get(member=customer)
        assert (event.type, event.properties) == (EventType.CONTACT_DELETED, {"userid": "zhangsan", "by": "customer"})
        assert ("activity", [customer.pk]) in heard and ("members", [customer.pk]) in heard
        assert MemberLifecycle.objects.get(member=customer).stage == "churned"
        from campaigns import services

        enrolled = services.enrol_daily(brand.tenant, timezone.now())
        assert enrolled == {recall.pk: 1}


def test_a_replayed_callback_does_nothing_twice(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1")
    params, body = wecom.callback(brand.tenant.slug, TOKEN, AES_KEY, CORP_ID, change("del_follow_user"))
    first = post_callback(client, brand.tenant.slug, params, body)
    again = post_callback(client, brand.tenant.slug, params, body)
    # WeCom's retry is encrypted afresh with another nonce: still the same callback.
    fields = wecom.sent_callbacks[-1][1]
    params2, body2 = wecom.callback(brand.tenant.slug, TOKEN, AES_KEY, CORP_ID, fields)
    third = post_callback(client, brand.tenant.slug, params2, body2)
    assert [r.content for r in (first, again, third)] == [b"success"] * 3
    with brand.scope():
        assert Event.objects.filter(member=customer).count() == 1
    assert [r.outcome for r in receipts(brand)] == ["done"]


def test_losing_a_guide_who_is_not_the_owner_is_recorded_but_the_member_stays_a_contact(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1", guide_userid="zhangsan")
    send(client, brand, wecom, change("del_follow_user", userid="lisi"))
    customer.refresh_from_db()
    assert customer.contact_status == ContactStatus.ACTIVE
    with brand.scope():
        assert Event.objects.get(member=customer).properties == {"userid": "lisi", "by": "customer"}


def test_a_guide_removing_the_customer_is_recorded_as_removed_by_guide(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1")
    assert send(client, brand, wecom, change("del_external_contact")).content == b"success"
    customer.refresh_from_db()
    assert customer.contact_status == ContactStatus.REMOVED_BY_GUIDE
    with brand.scope():
        event = Event.objects.get(member=customer)
    assert (event.type, event.properties) == (EventType.CONTACT_DELETED, {"userid": "zhangsan", "by": "guide"})


def test_an_edited_contact_gets_the_name_from_their_wecom_profile(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1", name="旧名字")
    wecom.add_contact("wmCUSTOMER1", "林晓", follow_userids=["zhangsan"])
    send(client, brand, wecom, change("edit_external_contact"))
    customer.refresh_from_db()
    assert customer.name == "林晓"
    assert [r["path"] for r in wecom.requests] == ["/cgi-bin/gettoken", "/cgi-bin/externalcontact/get"]


def test_a_failed_handler_leaves_nothing_half_done_and_the_retry_succeeds(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1", name="旧名字")
    fields = change("edit_external_contact", CreateTime=int(time.time()))
    assert send(client, brand, wecom, fields).content == b"success"
    [receipt] = receipts(brand)
    assert receipt.outcome == "failed" and "84061" in receipt.detail
    wecom.add_contact("wmCUSTOMER1", "林晓")
    send(client, brand, wecom, fields)
    [receipt] = receipts(brand)
    assert receipt.outcome == "done"
    customer.refresh_from_db()
    assert customer.name == "林晓"


def test_a_contact_added_without_a_live_code_creates_the_member_with_their_wecom_name(client, brand, wecom):
    configure(brand, wecom)
    with brand.scope():
        Staff.objects.filter(pk=brand.guide.pk).update(wecom_userid="zhangsan")
    wecom.add_contact("wmNEWCOMER", "周末", follow_userids=["zhangsan"])
    response = send(client, brand, wecom, change("add_external_contact", external_userid="wmNEWCOMER",
                                                 State="", WelcomeCode="WELCOME1"))
    assert response.content == b"success"
    with brand.scope():
        newcomer = Member.objects.get(wecom_external_userid="wmNEWCOMER")
        assert (newcomer.name, newcomer.owner_guide_id, newcomer.source_channel) == ("周末", brand.guide.pk, "wecom")
        assert list(Event.objects.filter(member=newcomer).values_list("type", flat=True)) == [EventType.CONTACT_ADDED]
    assert receipts(brand)[0].member_id == newcomer.pk


def test_a_failed_transfer_and_unknown_events_are_recorded_without_harm(client, brand, wecom):
    configure(brand, wecom)
    customer = contact(brand, "wmCUSTOMER1")
    send(client, brand, wecom, change("transfer_fail", FailReason="customer_refused"))
    send(client, brand, wecom, {"Event": "change_external_chat", "ChangeType": "create", "ChatId": "wrOgQhDgAA"})
    send(client, brand, wecom, change("del_follow_user", external_userid="wmSTRANGER"))
    assert [(r.change_type, r.outcome) for r in receipts(brand)] == [
        ("transfer_fail", "done"), ("create", "ignored"), ("del_follow_user", "ignored"),
    ]
    with brand.scope():
        event = Event.objects.get(member=customer)
    assert event.properties == {"name": "wecom_transfer_failed", "userid": "zhangsan", "reason": "customer_refused"}


# ---------------------------------------------------------------- the API client

def test_a_brand_without_corp_id_and_secret_has_no_client(brand):
    with brand.scope():
        assert WeComClient.for_tenant(brand.tenant) is None
        OutreachSettings.objects.create(tenant=brand.tenant, wecom_corp_id="ww1")
        assert WeComClient.for_tenant(brand.tenant) is None


def test_the_token_is_fetched_once_and_shared_by_every_client(brand, wecom):
    configure(brand, wecom)
    with brand.scope():
        WeComClient.for_tenant(brand.tenant).add_contact_way("A1B2C3", ["zhangsan"])
        made = WeComClient.for_tenant(brand.tenant).add_contact_way("A1B2C3", ["zhangsan", "lisi"], remark="门店收银台")
        assert made["qr_code"].endswith(".png") and made["config_id"] in wecom.contact_ways
        assert WeComToken.objects.get().expires_at > timezone.now() + timedelta(hours=1)
    assert len(wecom.calls("/cgi-bin/gettoken")) == 1
    assert wecom.contact_ways[made["config_id"]]["type"] == 2


def test_an_expired_token_is_fetched_again_and_the_call_retried(brand, wecom):
    configure(brand, wecom)
    with brand.scope():
        client = WeComClient.for_tenant(brand.tenant)
        made = client.add_contact_way("A1B2C3", ["zhangsan"])
        wecom.fail_next(42001)
        client.update_contact_way(made["config_id"], ["lisi"], "A1B2C3")
    assert wecom.contact_ways[made["config_id"]]["user"] == ["lisi"]
    tokens = [r["query"].get("access_token") for r in wecom.calls("/cgi-bin/externalcontact/update_contact_way")]
    assert len(wecom.calls("/cgi-bin/gettoken")) == 2 and tokens[0] != tokens[1]


def test_a_token_refused_twice_is_not_retried_forever(brand, wecom):
    configure(brand, wecom)
    wecom.fail_next(40014, 5)
    with brand.scope(), pytest.raises(WeComError) as raised:
        WeComClient.for_tenant(brand.tenant).del_contact_way("cfg1")
    assert raised.value.errcode == 40014
    assert len(wecom.calls("/cgi-bin/externalcontact/del_contact_way")) == 2


@pytest.mark.parametrize("errcode", [45009, -1])
def test_rate_limits_and_busy_answers_are_transient(brand, wecom, errcode):
    configure(brand, wecom)
    wecom.fail_next(errcode)
    with brand.scope(), pytest.raises(WeComError) as raised:
        WeComClient.for_tenant(brand.tenant).send_welcome_msg("CODE", "欢迎")
    assert raised.value.transient and raised.value.errcode == errcode
    with brand.scope(), pytest.raises(WeComError) as raised:
        WeComClient.for_tenant(brand.tenant).send_welcome_msg("", "欢迎")
    assert raised.value.errcode == 41051 and not raised.value.transient


def test_a_wrong_secret_is_a_permanent_error(brand, wecom):
    configure(brand, wecom)
    with brand.scope():
        OutreachSettings.objects.filter(tenant=brand.tenant).update(wecom_secret="wrong")
        with pytest.raises(WeComError) as raised:
            WeComClient.for_tenant(brand.tenant).get_external_contact("wm1")
    assert raised.value.errcode == 40001 and not raised.value.transient


def test_a_campaign_message_on_wecom_retries_after_a_rate_limit(brand, wecom):
    configure(brand, wecom)
    now = timezone.now()
    with brand.scope():
        customer = contact(brand, "wmCUSTOMER1")
        message = Message.objects.create(
            tenant=brand.tenant, member=customer, channel="wecom", recipient="wmCUSTOMER1", sender_ref="zhangsan",
            body="林晓，新品到店", idempotency_key="test:wecom:1", next_attempt_at=now, created_at=now,
        )
        wecom.fail_next(45009)
        assert delivery.deliver_due(brand.tenant, now) == {"failed": 1}
        assert delivery.deliver_due(brand.tenant, now + timedelta(minutes=1)) == {"sent": 1}
        message.refresh_from_db()
    assert message.provider_id.startswith("msg")
    assert wecom.templates == [{"chat_type": "single", "external_userid": ["wmCUSTOMER1"], "sender": "zhangsan",
                                "text": {"content": "林晓，新品到店"}}]



# ---------------------------------------------------------------- the live-code door, end to end

def test_a_customer_adding_a_guide_through_a_live_code_joins_once_however_often_wecom_retries(
        client, brand, wecom, django_capture_on_commit_callbacks):
    from campaigns import acquisition
    from campaigns.models import LiveCodeJoin
    from coupons.models import Coupon
    from tests.campaigns.helpers import template

    configure(brand, wecom)
    with brand.scope():
        Staff.objects.filter(pk=brand.guide.pk).update(wecom_userid="zhangsan")
        brand.guide.refresh_from_db()
        gift = template(brand, per_member_limit=None)
        with django_capture_on_commit_callbacks(execute=True):
            code = acquisition.save_live_code(brand.tenant, {
                "name": "收银台", "channel_type": "store_cashier", "store": brand.store, "pool": [brand.guide],
                "welcome_message": "{name}您好，我是{guide}，新人券 {coupon_code}", "welcome_coupon": gift,
            }, as_of=timezone.now())
    [way] = wecom.contact_ways.values()
    assert way["state"] == code.code and way["user"] == ["zhangsan"]

    wecom.add_contact("wmJOINER", "林晓", follow_userids=["zhangsan"])
    fields = change("add_external_contact", external_userid="wmJOINER", State=code.code, WelcomeCode="WELCOME-J1")
    params, body = wecom.callback(brand.tenant.slug, TOKEN, AES_KEY, CORP_ID, fields)
    for _attempt in range(3):  # WeCom retries a callback it thinks went unanswered
        with django_capture_on_commit_callbacks(execute=True):
            assert post_callback(client, brand.tenant.slug, params, body).content == b"success"

    with brand.scope():
        joiner = Member.objects.get(wecom_external_userid="wmJOINER")
        assert (joiner.name, joiner.owner_guide_id) == ("林晓", brand.guide.pk)
        assert LiveCodeJoin.objects.filter(live_code=code, member=joiner).count() == 1
        [coupon] = Coupon.objects.filter(member=joiner)
        assert Event.objects.filter(member=joiner, type=EventType.CONTACT_ADDED).count() == 1
    [welcome] = wecom.welcome_messages
    assert welcome["welcome_code"] == "WELCOME-J1"
    assert welcome["text"]["content"] == f"林晓您好，我是{brand.guide.name}，新人券 {coupon.display_code}"
