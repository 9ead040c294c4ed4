"""The outbox and its senders.

A message is claimed with a conditional UPDATE (status and next attempt) that also leases it for
a few minutes, so two workers never send the same message and a worker that dies mid-send gives
it back. Each sender raises ``SendError(transient=…)``: transient errors (timeouts, 5xx, 429, a
busy provider) retry with exponential backoff until MAX_ATTEMPTS, then the message is dead;
permanent ones (a refused address, bad credentials) are dead at once. Dead messages can be
queued again from the outbox page. The message's idempotency key goes to every provider that
takes one, so a retried delivery is not delivered twice.
"""
import base64
import hashlib
import hmac
import json
import logging
import smtplib
import socket
import urllib.error
import urllib.request
from datetime import timedelta

from django.core.mail import EmailMessage
from django.db.models import Q
from django.utils.translation import gettext as _

from .models import Channel, Message, OutreachSettings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)
LEASE = timedelta(minutes=5)
TIMEOUT_SECONDS = 10
DELIVER_LIMIT = 500


class SendError(Exception):
    def __init__(self, message, transient):
        super().__init__(message)
        self.transient = transient


def backoff(attempts):
    """Delay before attempt ``attempts + 1``: 1, 2, 4, 8 … minutes, at most six hours."""
    return min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _http(method, url, body=None, headers=None):
    """(status, parsed JSON or text). Network failures and timeouts are transient SendErrors."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
        raise SendError(f"{url}: {getattr(exc, 'reason', exc)}", transient=True) from None
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else {}
    except ValueError:
        return status, text


def _raise_for_status(status, payload, what):
    if 200 <= status < 300:
        return
    transient = status >= 500 or status in (408, 429)
    raise SendError(f"{what}: HTTP {status} {str(payload)[:300]}", transient=transient)


class Sender:
    """One channel's delivery. ``send`` returns the provider's id or raises SendError."""

    def send(self, message, settings):
        raise NotImplementedError


class ConsoleSender(Sender):
    def send(self, message, settings):
        log.info("message %s to %s via console: %s", message.pk, message.recipient, message.body)
        return f"console-{message.pk}"


class WebhookSender(Sender):
    """POST a JSON body to the brand's URL, signed: X-SCRM-Signature: sha256=<hex HMAC of the body>."""

    def send(self, message, settings):
        if not settings.webhook_url:
            raise SendError(_("No webhook URL is set."), transient=False)
        body = json.dumps({
            "id": message.pk, "idempotency_key": message.idempotency_key, "channel": message.channel,
            "recipient": message.recipient, "body": message.body,
            "member_external_id": message.member.external_id if message.member_id else None,
            "campaign_id": message.campaign_id,
        }, ensure_ascii=False).encode()
        signature = hmac.new(settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        status, payload = _http("POST", settings.webhook_url, body, {
            "Content-Type": "application/json", "X-SCRM-Signature": f"sha256={signature}",
            "Idempotency-Key": message.idempotency_key,
        })
        _raise_for_status(status, payload, "webhook")
        return str(payload.get("id", "")) if isinstance(payload, dict) else ""


class EmailSender(Sender):
    def send(self, message, settings):
        mail = EmailMessage(
            subject=message.campaign.name if message.campaign_id else _("A message for you"),
            body=message.body, from_email=settings.email_from or None, to=[message.recipient],
            headers={"X-SCRM-Idempotency-Key": message.idempotency_key},
        )
        try:
            mail.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"email: {exc}", transient=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(f"email: {exc}", transient=True) from None
        return mail.extra_headers.get("Message-ID", "")


class SmsSender(Sender):
    """An HTTP SMS gateway: POST JSON {mobile, content, request_id} with HTTP Basic credentials;
    it answers {"code": "OK", "message_id": …} or {"code": <error>, "message": …}. A request_id
    the gateway has seen is answered with the first message_id, not sent again."""

    def send(self, message, settings):
        if not settings.sms_url:
            raise SendError(_("No SMS gateway is set."), transient=False)
        content = f"【{settings.sms_signature}】{message.body}" if settings.sms_signature else message.body
        body = json.dumps(
            {"mobile": message.recipient, "content": content, "request_id": message.idempotency_key},
            ensure_ascii=False,
        ).encode()
        credentials = f"{settings.sms_account}:{settings.sms_secret}".encode()
        status, payload = _http("POST", settings.sms_url, body, {
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        })
        _raise_for_status(status, payload, "sms")
        if not isinstance(payload, dict) or payload.get("code") != "OK":
            code = payload.get("code") if isinstance(payload, dict) else payload
            raise SendError(f"sms: {str(payload)[:300]}", transient=code == "BUSY")
        return str(payload.get("message_id", ""))


class WeComSender(Sender):
    """企业微信 external contact: add_msg_template for one external user, sent by the member's guide,
    through the brand's WeCom client (shared cached token, renewed once when WeCom says it expired).
    Busy and rate-limit answers are transient."""

    def send(self, message, settings):
        from .wecom.client import WeComClient, WeComError

        if not (settings.wecom_corp_id and settings.wecom_secret):
            raise SendError(_("WeCom corp id and secret are not set."), transient=False)
        try:
            sent = WeComClient(settings).add_msg_template(message.sender_ref, [message.recipient], message.body)
        except WeComError as exc:
            raise SendError(str(exc)[:500], transient=exc.transient) from None
        if sent["fail_list"]:
            raise SendError(f"wecom: not sent to {sent['fail_list']}", transient=False)
        return str(sent["msgid"])


SENDERS = {
    Channel.CONSOLE: ConsoleSender(), Channel.WEBHOOK: WebhookSender(), Channel.EMAIL: EmailSender(),
    Channel.SMS: SmsSender(), Channel.WECOM: WeComSender(),
}


def _claim(message_id, as_of):
    return Message.objects.filter(
        pk=message_id, status__in=(Message.Status.QUEUED, Message.Status.FAILED, Message.Status.SENDING),
        next_attempt_at__lte=as_of,
    ).update(status=Message.Status.SENDING, next_attempt_at=as_of + LEASE)


def deliver(message, settings, as_of):
    """Send one claimed message and record the outcome on it."""
    attempts = message.attempts + 1
    try:
        provider_id = SENDERS[message.channel].send(message, settings)
    except SendError as exc:
        dead = not exc.transient or attempts >= MAX_ATTEMPTS
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.DEAD if dead else Message.Status.FAILED, attempts=attempts,
            last_error=str(exc)[:2000], next_attempt_at=as_of if dead else as_of + backoff(attempts),
        )
        return Message.Status.DEAD if dead else Message.Status.FAILED
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENT, attempts=attempts, provider_id=provider_id[:120], sent_at=as_of, last_error="",
    )
    return Message.Status.SENT


def deliver_due(tenant, as_of, limit=DELIVER_LIMIT):
    """Deliver the messages whose (next) attempt is due. Returns {status: count}."""
    settings = OutreachSettings.objects.filter(tenant=tenant).first() or OutreachSettings(tenant=tenant)
    due = Message.objects.filter(
        Q(status__in=(Message.Status.QUEUED, Message.Status.FAILED, Message.Status.SENDING)),
        next_attempt_at__lte=as_of,
    ).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]
    outcome = {}
    for message_id in list(due):
        if not _claim(message_id, as_of):
            continue
        message = Message.objects.select_related("member", "campaign").get(pk=message_id)
        status = deliver(message, settings, as_of)
        outcome[status] = outcome.get(status, 0) + 1
    return outcome


def retry_message(message, as_of):
    """Queue a dead or failed message again (from the outbox page); returns whether it was queued."""
    return bool(Message.objects.filter(
        pk=message.pk, status__in=(Message.Status.DEAD, Message.Status.FAILED)
    ).update(status=Message.Status.QUEUED, attempts=0, next_attempt_at=as_of))
