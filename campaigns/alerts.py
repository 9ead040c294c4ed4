"""Mass-loss alerts (批量删好友预警): the daily check records each guide who lost the threshold or
more WeCom contacts on the brand's previous local day and tells the people who can act on it.

Who is told: the store managers of the guide's stores and the brand's owners and operators
(active staff only). How: a WeCom application message (应用消息) to those with a WeCom user id,
when the brand has WeCom and an application AgentId set up, and an email to those with an email
address. Each alert is one ChurnAlert row, unique per brand, guide and day; the notifications are
claimed on that row with a conditional update, so a retried task, a second worker or a re-run
check never tells anyone twice. One channel failing never stops the other, and the row records
what each channel did.
"""
import logging
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.core.mail import send_mail
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from scrm.models import Staff, Store

from . import acquisition_queries as queries
from .models import ChurnAlert, OutreachSettings
from .wecom.client import WeComClient, WeComError

log = logging.getLogger(__name__)

DETAIL_LENGTH = 300


class Channel:
    SENT = "sent"
    FAILED = "failed"
    OFF = "off"  # the brand has not set the channel up
    NOBODY = "nobody"  # no recipient has a WeCom user id / an email address


def alert_mass_losses(tenant, as_of, threshold=None):
    """The daily check: record and notify each guide over the threshold on the brand's previous
    local day. Returns [{alert_id, guide_id, guide_name, day, deletions, notified}] where
    ``notified`` says whether this call sent the notifications (False when an earlier one did)."""
    threshold = threshold or queries.MASS_LOSS_THRESHOLD
    day, rows = queries.mass_losses(tenant, as_of, threshold)
    found = []
    for row in rows:
        log.warning("churn alert: brand %s, guide %s (%s) lost %d contacts on %s",
                    tenant.slug, row["guide_id"], row["guide_name"], row["deletions"], day)
        alert = _record(row, day, threshold, as_of)
        notified = _claim(alert, as_of)
        if notified:
            notify(tenant, alert)
        found.append({"alert_id": alert.pk, **row, "day": day.isoformat(), "notified": notified})
    return found


def _record(row, day, threshold, as_of):
    """The day's alert of one guide, created once; a later check that counts more deletions
    (a late callback) raises the count without telling anyone again."""
    store = Store.objects.filter(staff=row["guide_id"]).order_by("code").first()
    alert, created = ChurnAlert.objects.get_or_create(
        guide_id=row["guide_id"], day=day,
        defaults={"store": store, "deletions": row["deletions"], "threshold": threshold, "created_at": as_of},
    )
    if not created and row["deletions"] > alert.deletions:
        ChurnAlert.objects.filter(pk=alert.pk, deletions__lt=row["deletions"]).update(deletions=row["deletions"])
        alert.deletions = row["deletions"]
    return alert


def _claim(alert, as_of):
    """True for the one caller that gets to send this alert's notifications."""
    claimed = ChurnAlert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=as_of)
    if claimed:
        alert.notified_at = as_of
    return bool(claimed)


def recipients_of(guide):
    """Active store managers of the guide's stores and the brand's active owners and operators."""
    return list(
        Staff.objects.filter(active=True)
        .filter(Q(role__in=(Staff.Role.OWNER, Staff.Role.OPERATOR))
                | Q(role=Staff.Role.STORE_MANAGER, stores__in=guide.stores.all()))
        .exclude(pk=guide.pk).distinct().select_related("user").order_by("name", "pk")
    )


def link(alert):
    """The churn alerts page narrowed to the guide and the day."""
    day = alert.day.isoformat()
    query = urlencode({"guide_id": alert.guide_id, "start": day, "end": day})
    return f"{django_settings.SITE_URL.rstrip('/')}{reverse('campaigns:churn_alerts')}?{query}"


def compose(tenant, alert):
    """(subject, text) in the brand's language."""
    with translation.override(tenant.default_language):
        values = {
            "guide": alert.guide.name, "store": alert.store.name if alert.store_id else _("no store"),
            "day": alert.day.isoformat(), "n": alert.deletions, "threshold": alert.threshold, "link": link(alert),
        }
        subject = ngettext(
            "Mass loss alert: %(guide)s lost %(n)d WeCom contact on %(day)s",
            "Mass loss alert: %(guide)s lost %(n)d WeCom contacts on %(day)s",
            alert.deletions,
        ) % values
        text = ngettext(
            "Guide %(guide)s (%(store)s) was deleted by %(n)d WeCom contact on %(day)s, "
            "at or above the alert threshold of %(threshold)d a day.",
            "Guide %(guide)s (%(store)s) was deleted by %(n)d WeCom contacts on %(day)s, "
            "at or above the alert threshold of %(threshold)d a day.",
            alert.deletions,
        ) % values
        text += "\n" + _("See who left and hand them to a recall campaign: %(link)s") % values
    return subject, text


def notify(tenant, alert):
    """Send the alert through WeCom and email, and record whom it was meant for and what each
    channel did."""
    recipients = recipients_of(alert.guide)
    settings = OutreachSettings.objects.filter(tenant=tenant).first()
    subject, text = compose(tenant, alert)
    channels = {
        "wecom": _attempt("wecom", alert, lambda: _by_wecom(settings, recipients, f"{subject}\n{text}")),
        "email": _attempt("email", alert, lambda: _by_email(settings, recipients, subject, text)),
    }
    alert.recipients = [{"id": s.pk, "name": s.name, "role": s.role} for s in recipients]
    alert.channels = channels
    ChurnAlert.objects.filter(pk=alert.pk).update(recipients=alert.recipients, channels=channels)
    return channels


def _attempt(name, alert, send):
    # Whatever goes wrong in one channel, the other still runs and the alert keeps its record.
    try:
        return send()
    except Exception as exc:  # noqa: BLE001
        log.exception("churn alert %s: %s failed", alert.pk, name)
        return {"status": Channel.FAILED, "to": [], "detail": str(exc)[:DETAIL_LENGTH]}


def _by_wecom(settings, recipients, text):
    if settings is None or not (settings.wecom_corp_id and settings.wecom_secret and settings.wecom_agent_id):
        return {"status": Channel.OFF, "to": [], "detail": ""}
    userids = sorted({s.wecom_userid for s in recipients if s.wecom_userid})
    if not userids:
        return {"status": Channel.NOBODY, "to": [], "detail": ""}
    try:
        missed = WeComClient(settings).send_app_message(settings.wecom_agent_id, userids, text)
    except WeComError as exc:
        return {"status": Channel.FAILED, "to": userids, "detail": str(exc)[:DETAIL_LENGTH]}
    return {"status": Channel.SENT, "to": [u for u in userids if u not in missed], "missed": missed, "detail": ""}


def _by_email(settings, recipients, subject, text):
    addresses = sorted({s.user.email for s in recipients if s.user.email})
    if not addresses:
        return {"status": Channel.NOBODY, "to": [], "detail": ""}
    send_mail(subject, text, (settings.email_from if settings else "") or None, addresses)
    return {"status": Channel.SENT, "to": addresses, "detail": ""}


def acknowledge(alert, staff, as_of):
    """Mark the alert as seen and handled by ``staff`` (None: an API key); the first
    acknowledgement stands. Returns the alert as stored."""
    ChurnAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=as_of, acknowledged_by=staff,
    )
    alert.refresh_from_db(fields=["acknowledged_at", "acknowledged_by"])
    return alert


def may_acknowledge(staff):
    """Store managers, operators and owners (and API keys) acknowledge; guides do not."""
    return staff is None or staff.role != Staff.Role.GUIDE
