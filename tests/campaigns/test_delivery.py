"""Senders against a local server speaking each provider's protocol: retries with backoff for
transient errors, none for permanent ones, and one idempotency key across attempts."""
import base64
import hashlib
import hmac
import json
import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache

from campaigns import delivery
from campaigns.models import Message, OutreachSettings

from .helpers import T0, member
from .stub_server import Provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_cached_token(in_brand):
    """Tenant ids repeat across tests on SQLite: forget any token an earlier test cached."""
    key = f"wecom-token:{in_brand.tenant.pk}:ww123"
    cache.delete(key)
    yield
    cache.delete(key)


@pytest.fixture
def provider():
    with Provider() as running:
        yield running


def queue(brand, channel, recipient="13800138000", body="林晓，您的券即将过期", key="step:1:enrolment:1", sender_ref=""):
    return Message.objects.create(
        tenant=brand.tenant, channel=channel, recipient=recipient, body=body, idempotency_key=key,
        sender_ref=sender_ref, created_at=T0, next_attempt_at=T0,
    )


def settings_for(brand, **fields):
    return OutreachSettings.objects.create(tenant=brand.tenant, **fields)


def test_a_webhook_that_fails_first_is_retried_after_the_backoff_with_the_same_signed_body(in_brand, provider):
    settings_for(in_brand, webhook_url=provider.url + "/hook", webhook_secret="topsecret")
    provider.answer("/hook", (503, {"error": "busy"}), (200, {"id": "wh-77"}))
    message = queue(in_brand, "webhook", recipient="M0001")

    assert delivery.deliver_due(in_brand.tenant, T0) == {"failed": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == ("failed", 1, T0 + timedelta(minutes=1))
    assert "HTTP 503" in message.last_error
    assert delivery.deliver_due(in_brand.tenant, T0 + timedelta(seconds=59)) == {}
    assert delivery.deliver_due(in_brand.tenant, T0 + timedelta(minutes=1)) == {"sent": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_id) == ("sent", 2, "wh-77")

    first, second = provider.calls("/hook")
    assert first["body"] == second["body"]
    assert json.loads(first["body"])["body"] == "林晓，您的券即将过期"
    expected = hmac.new(b"topsecret", first["body"], hashlib.sha256).hexdigest()
    assert first["headers"]["x-scrm-signature"] == f"sha256={expected}"
    assert first["headers"]["idempotency-key"] == second["headers"]["idempotency-key"] == "step:1:enrolment:1"


def test_a_permanent_error_is_not_retried(in_brand, provider):
    settings_for(in_brand, webhook_url=provider.url + "/hook", webhook_secret="s")
    provider.answer("/hook", (400, {"error": "unknown recipient"}))
    message = queue(in_brand, "webhook")
    assert delivery.deliver_due(in_brand.tenant, T0) == {"dead": 1}
    assert delivery.deliver_due(in_brand.tenant, T0 + timedelta(days=1)) == {}
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("dead", 1)
    assert len(provider.calls("/hook")) == 1


def test_a_message_that_keeps_failing_dies_after_the_last_attempt_and_can_be_retried(in_brand, provider):
    settings_for(in_brand, webhook_url=provider.url + "/hook", webhook_secret="s")
    provider.answer("/hook", (500, {}))
    message = queue(in_brand, "webhook")
    moment = T0
    for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
        delivery.deliver_due(in_brand.tenant, moment)
        message.refresh_from_db()
        assert message.attempts == attempt
        moment = message.next_attempt_at
    assert message.status == "dead"
    assert len(provider.calls("/hook")) == delivery.MAX_ATTEMPTS
    provider.answer("/hook", (200, {"id": "late"}))
    assert delivery.retry_message(message, moment)
    assert delivery.deliver_due(in_brand.tenant, moment) == {"sent": 1}


def test_the_sms_gateway_gets_basic_credentials_and_a_busy_answer_is_retried(in_brand, provider):
    settings_for(in_brand, sms_url=provider.url + "/sms/send", sms_account="acme", sms_secret="pa55", sms_signature="ACME")
    provider.answer("/sms/send", (200, {"code": "BUSY", "message": "rate limited"}),
                    (200, {"code": "OK", "message_id": "sms-1"}))
    message = queue(in_brand, "sms")
    assert delivery.deliver_due(in_brand.tenant, T0) == {"failed": 1}
    assert delivery.deliver_due(in_brand.tenant, T0 + timedelta(minutes=1)) == {"sent": 1}
    message.refresh_from_db()
    assert message.provider_id == "sms-1"
    first, second = provider.calls("/sms/send")
    assert first["headers"]["authorization"] == "Basic " + base64.b64encode(b"acme:pa55").decode()
    sent = json.loads(second["body"])
    assert sent == {"mobile": "13800138000", "content": "【ACME】林晓，您的券即将过期", "request_id": "step:1:enrolment:1"}


def test_an_sms_refused_by_the_gateway_is_dead(in_brand, provider):
    settings_for(in_brand, sms_url=provider.url + "/sms/send", sms_account="acme", sms_secret="pa55")
    provider.answer("/sms/send", (200, {"code": "BAD_MOBILE", "message": "invalid number"}))
    queue(in_brand, "sms")
    assert delivery.deliver_due(in_brand.tenant, T0) == {"dead": 1}


def test_wecom_gets_a_token_then_sends_the_template_and_renews_an_expired_token(in_brand, provider, no_cached_token):
    settings_for(in_brand, wecom_api_base=provider.url, wecom_corp_id="ww123", wecom_secret="contact-secret")
    provider.answer("/cgi-bin/gettoken", (200, {"errcode": 0, "access_token": "TOKEN1", "expires_in": 7200}),
                    (200, {"errcode": 0, "access_token": "TOKEN2", "expires_in": 7200}))
    provider.answer("/cgi-bin/externalcontact/add_msg_template",
                    (200, {"errcode": -1, "errmsg": "system busy"}),
                    (200, {"errcode": 42001, "errmsg": "access_token expired"}),
                    (200, {"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": "msgGAAA"}))
    message = queue(in_brand, "wecom", recipient="wmEXTERNAL", sender_ref="zhangsan")

    assert delivery.deliver_due(in_brand.tenant, T0) == {"failed": 1}
    assert delivery.deliver_due(in_brand.tenant, T0 + timedelta(minutes=1)) == {"sent": 1}
    message.refresh_from_db()
    assert message.provider_id == "msgGAAA"
    tokens = provider.calls("/cgi-bin/gettoken")
    assert len(tokens) == 2 and tokens[0]["query"] == {"corpid": ["ww123"], "corpsecret": ["contact-secret"]}
    sends = provider.calls("/cgi-bin/externalcontact/add_msg_template")
    assert [s["query"]["access_token"] for s in sends] == [["TOKEN1"], ["TOKEN1"], ["TOKEN2"]]
    assert json.loads(sends[-1]["body"]) == {
        "chat_type": "single", "external_userid": ["wmEXTERNAL"], "sender": "zhangsan",
        "text": {"content": "林晓，您的券即将过期"},
    }


def test_email_goes_through_the_django_email_backend(in_brand):
    settings_for(in_brand, email_from="crm@acme.example")
    queue(in_brand, "email", recipient="lin@example.com")
    assert delivery.deliver_due(in_brand.tenant, T0) == {"sent": 1}
    assert [(m.to, m.from_email, m.body) for m in mail.outbox] == [(["lin@example.com"], "crm@acme.example", "林晓，您的券即将过期")]


def test_an_unreachable_provider_is_a_transient_failure(in_brand):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings_for(in_brand, webhook_url=f"http://127.0.0.1:{port}/hook")
    queue(in_brand, "webhook")
    assert delivery.deliver_due(in_brand.tenant, T0) == {"failed": 1}


def test_the_console_channel_marks_messages_sent(in_brand):
    message = queue(in_brand, "console")
    assert delivery.deliver_due(in_brand.tenant, T0) == {"sent": 1}
    message.refresh_from_db()
    assert message.provider_id == f"console-{message.pk}"


def test_a_message_claimed_by_another_worker_is_not_sent_twice(in_brand):
    message = queue(in_brand, "console")
    assert delivery._claim(message.pk, T0) == 1
    assert delivery.deliver_due(in_brand.tenant, T0) == {}
    assert delivery.deliver_due(in_brand.tenant, T0 + delivery.LEASE) == {"sent": 1}


def test_another_brands_messages_are_not_delivered(brand, other_brand):
    with other_brand.scope():
        queue(other_brand, "console")
    with brand.scope():
        member(brand)
        assert delivery.deliver_due(brand.tenant, T0) == {}
