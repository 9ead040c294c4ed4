"""The public landing page of a live code (/j/<code>/): mobile number, one-time code by SMS, the guide."""
import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns import acquisition
from campaigns.models import LiveCode, LiveCodeDay, LiveCodeJoin, Message, OutreachSettings
from members.models import Member

from .helpers import template
from .stub_server import Provider

pytestmark = pytest.mark.django_db

MOBILE = "13800138000"


@pytest.fixture
def gateway(brand):
    """The brand's SMS gateway: a local server that accepts every message."""
    with Provider() as running:
        running.answer("/sms/send", (200, {"code": "OK", "message_id": "sms-1"}))
        with brand.scope():
            OutreachSettings.objects.create(tenant=brand.tenant, sms_url=running.url + "/sms/send", sms_account="acme",
                                            sms_secret="pa55", sms_signature="ACME")
        yield running


@pytest.fixture
def code(brand):
    with brand.scope():
        gift = template(brand, name="新客礼 ¥66")
        return acquisition.save_live_code(brand.tenant, {
            "name": "包裹卡", "channel_type": "parcel_card", "store": brand.store, "rule": "round_robin",
            "pool": [brand.guide, brand.guide2], "welcome_coupon": gift, "status": "active",
        }, by=brand.operator, as_of=timezone.now())


@pytest.fixture
def customer():
    return Client(REMOTE_ADDR="10.1.2.3")


def sms_to(gateway, mobile):
    return [json.loads(r["body"]) for r in gateway.calls("/sms/send") if json.loads(r["body"])["mobile"] == mobile]


def one_time_code(gateway, mobile):
    """The code in the last SMS sent to ``mobile``, read the way the customer reads it."""
    content = sms_to(gateway, mobile)[-1]["content"]
    return re.search(r"\d{6}", content).group(0)


def ask_for_code(client, code, mobile, capture, htmx=False):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    with capture(execute=True):
        return client.post(f"/j/{code.code}/", {"step": "send", "mobile": mobile}, **extra)


def confirm(client, code, mobile, digits, capture, htmx=False):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    with capture(execute=True):
        return client.post(f"/j/{code.code}/", {"step": "confirm", "mobile": mobile, "code": digits}, **extra)


def test_a_customer_confirms_the_code_from_the_sms_and_meets_their_guide_and_gift(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    page = customer.get(f"/j/{code.code}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<html lang="zh-hans">' in html and 'name="mobile"' in html and "acme store 1" in html
    with brand.scope():
        assert LiveCodeDay.objects.get(live_code=code).views == 1

    sent = ask_for_code(customer, code, "138 0013 8000", django_capture_on_commit_callbacks)
    assert sent.status_code == 200 and 'data-step="code"' in sent.content.decode()
    assert "138 **** 8000" in sent.content.decode()
    (sms,) = sms_to(gateway, MOBILE)
    assert sms["content"].startswith("【ACME】")

    done = confirm(customer, code, MOBILE, one_time_code(gateway, MOBILE), django_capture_on_commit_callbacks)
    assert done.status_code == 302 and done["Location"] == f"/j/{code.code}/welcome/"
    welcome = customer.get(done["Location"])
    html = welcome.content.decode()
    with brand.scope():
        joined = LiveCodeJoin.objects.select_related("member", "coupon").get(live_code=code)
        assert Member.objects.get(mobile=MOBILE) == joined.member
    assert joined.door == "landing" and joined.guide == brand.guide and joined.new_member
    assert 'data-testid="guide-name">导购甲<' in html and 'data-testid="guide-store">acme store 1<' in html
    assert f'data-testid="coupon-code">{joined.coupon.display_code}<' in html and "新客礼 ¥66" in html
    assert 'data-testid="guide-will-contact"' in html and 'data-testid="wecom-qr"' not in html


def test_the_steps_swap_in_place_with_htmx_and_show_the_wecom_qr_of_the_code(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    LiveCode.objects.unscoped().filter(pk=code.pk).update(wecom_qr_url="https://wework.qpic.cn/wwpic/contact-way.png")
    customer.get(f"/j/{code.code}/")
    sent = ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks, htmx=True)
    assert sent.content.decode().startswith('<div id="landing-step" data-step="code">')
    done = confirm(customer, code, MOBILE, one_time_code(gateway, MOBILE), django_capture_on_commit_callbacks,
                   htmx=True)
    html = done.content.decode()
    assert done.status_code == 200 and "<html" not in html and 'data-step="welcome"' in html
    assert 'src="https://wework.qpic.cn/wwpic/contact-way.png"' in html and "guide-will-contact" not in html


def test_a_wrong_code_is_explained_next_to_the_field_and_the_tries_run_out(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks)
    right = one_time_code(gateway, MOBILE)
    wrong = "000000" if right != "000000" else "111111"
    answers = [confirm(customer, code, MOBILE, wrong, django_capture_on_commit_callbacks) for _ in range(5)]
    first, last = answers[0].content.decode(), answers[-1].content.decode()
    assert 'data-testid="code-error"' in first and 'is-invalid' in first and 'data-step="code"' in first
    assert str(answers[0].context["form"].errors["code"]) != str(answers[-1].context["form"].errors["code"])
    assert 'data-testid="code-error"' in last
    too_late = confirm(customer, code, MOBILE, right, django_capture_on_commit_callbacks)
    assert too_late.status_code == 200 and 'data-testid="code-error"' in too_late.content.decode()
    with brand.scope():
        assert not LiveCodeJoin.objects.exists() and not Member.objects.filter(mobile=MOBILE).exists()


def test_a_mobile_number_that_is_not_one_is_refused_before_any_sms_is_sent(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    for junk in ("", "12345", "1380013", "abc-def", "12012345678"):
        answer = ask_for_code(customer, code, junk, django_capture_on_commit_callbacks)
        html = answer.content.decode()
        assert 'data-step="mobile"' in html and 'data-testid="mobile-error"' in html, junk
    assert gateway.calls("/sms/send") == []


def test_one_visitor_cannot_make_the_brand_send_sms_without_end(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    mobiles = [f"1390000000{i}" for i in range(7)]
    answers = [ask_for_code(customer, code, m, django_capture_on_commit_callbacks) for m in mobiles]
    assert ['data-step="code"' in a.content.decode() for a in answers] == [True] * 5 + [False] * 2
    assert 'data-testid="mobile-error"' in answers[-1].content.decode()
    assert len(gateway.calls("/sms/send")) == 5
    # Another visitor is not held back by the first.
    other = ask_for_code(Client(REMOTE_ADDR="10.9.9.9"), code, "13700000000", django_capture_on_commit_callbacks)
    assert 'data-step="code"' in other.content.decode()


def test_customers_behind_the_sites_proxy_are_limited_one_by_one_whatever_they_forward(
    brand, code, gateway, django_capture_on_commit_callbacks
):
    spoofer = Client(REMOTE_ADDR="127.0.0.1")
    answers = []
    for i in range(6):
        # A client may send its own X-Forwarded-For; the proxy appends the address it saw last.
        spoofer.defaults["HTTP_X_FORWARDED_FOR"] = f"1.1.1.{i}, 203.0.113.7"
        answers.append(ask_for_code(spoofer, code, f"1390000001{i}", django_capture_on_commit_callbacks))
    assert ['data-step="code"' in a.content.decode() for a in answers] == [True] * 5 + [False]
    neighbour = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert 'data-step="code"' in ask_for_code(neighbour, code, "13700000001", django_capture_on_commit_callbacks).content.decode()


def test_a_code_paused_while_the_customer_is_on_the_page_sends_them_to_the_not_active_page(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    customer.get(f"/j/{code.code}/")
    LiveCode.objects.unscoped().filter(pk=code.pk).update(status="paused")
    answer = ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks, htmx=True)
    assert answer.status_code == 204 and answer["HX-Redirect"] == f"/j/{code.code}/"
    assert gateway.calls("/sms/send") == []


def test_asking_again_at_once_for_the_same_number_sends_nothing_more(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks)
    again = ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks)
    assert 'data-testid="mobile-error"' in again.content.decode()
    assert len(sms_to(gateway, MOBILE)) == 1


def test_an_unknown_or_archived_code_is_a_friendly_not_found_page(brand, code, customer):
    unknown = customer.get("/j/nosuchcode/")
    assert unknown.status_code == 404 and 'data-testid="not-found"' in unknown.content.decode()
    LiveCode.objects.unscoped().filter(pk=code.pk).update(status="archived")
    archived = customer.get(f"/j/{code.code}/")
    assert archived.status_code == 404 and 'data-testid="not-found"' in archived.content.decode()
    assert customer.post(f"/j/{code.code}/", {"step": "send", "mobile": MOBILE}).status_code == 404


def test_a_paused_code_or_one_outside_its_window_says_it_is_not_active_and_sends_nothing(
    brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    LiveCode.objects.unscoped().filter(pk=code.pk).update(status="paused")
    paused = customer.get(f"/j/{code.code}/")
    assert paused.status_code == 200 and 'data-testid="not-active"' in paused.content.decode()
    now = timezone.now()
    LiveCode.objects.unscoped().filter(pk=code.pk).update(status="active", starts_at=now - timedelta(days=30),
                                                          ends_at=now - timedelta(days=1))
    ended = customer.get(f"/j/{code.code}/")
    assert 'data-testid="not-active"' in ended.content.decode()
    answer = ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks)
    assert 'data-testid="not-active"' in answer.content.decode()
    assert gateway.calls("/sms/send") == []
    with brand.scope():
        assert not LiveCodeDay.objects.exists()


def test_the_page_follows_the_brand_language_until_the_customer_switches(brand, code, customer):
    assert '<html lang="zh-hans">' in customer.get(f"/j/{code.code}/").content.decode()
    switched = customer.post("/i18n/setlang/", {"language": "en", "next": f"/j/{code.code}/"})
    assert switched.status_code == 302 and switched["Location"] == f"/j/{code.code}/"
    html = customer.get(f"/j/{code.code}/").content.decode()
    assert '<html lang="en">' in html and "Mobile number" in html
    brand.tenant.default_language = "en"
    brand.tenant.save()
    assert '<html lang="en">' in Client(HTTP_ACCEPT_LANGUAGE="zh-CN").get(f"/j/{code.code}/").content.decode()


def test_the_welcome_page_needs_a_join_from_this_browser(brand, code, customer):
    answer = customer.get(f"/j/{code.code}/welcome/")
    assert answer.status_code == 302 and answer["Location"] == f"/j/{code.code}/"


def test_a_join_through_one_brands_code_never_touches_another_brands_member(
    brand, other_brand, code, gateway, customer, django_capture_on_commit_callbacks
):
    with other_brand.scope():
        theirs = Member.objects.create(tenant=other_brand.tenant, external_id="R1", name="对手会员", mobile=MOBILE,
                                       joined_at=timezone.now(), owner_guide=other_brand.guide)
    ask_for_code(customer, code, MOBILE, django_capture_on_commit_callbacks)
    confirm(customer, code, MOBILE, one_time_code(gateway, MOBILE), django_capture_on_commit_callbacks)
    with brand.scope():
        mine = Member.objects.get(mobile=MOBILE)
        assert mine.owner_guide == brand.guide
    theirs.refresh_from_db()
    assert theirs.tenant == other_brand.tenant and theirs.owner_guide == other_brand.guide
    with other_brand.scope():
        assert not LiveCodeJoin.objects.exists() and not Message.objects.exists()
    # A signed-in operator of the other brand opening the code still lands in this code's brand.
    rival = other_brand.session(other_brand.operator)
    html = rival.get(f"/j/{code.code}/").content.decode()
    assert "Acme" in html and "Rival" not in html
