"""What WeCom callbacks do to our data.

``receive_callback`` claims a receipt (unique per brand on a hash of what the message says) before
it acts, so a callback WeCom sends again, or two copies arriving at once, act once. A handler that
fails leaves nothing half-written (it runs in a savepoint) and marks the receipt failed; the next
delivery of the same callback tries again.
"""
import hashlib
import json
import logging
from datetime import datetime, timezone as dt_timezone

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import ContactStatus, Event, EventType, Member
from members.signals import activity_recorded, members_changed

from ..models import WeComCallback
from .client import WeComClient, WeComError

log = logging.getLogger(__name__)

KEY_FIELDS = ("ToUserName", "CreateTime", "MsgType", "Event", "ChangeType", "UserID", "ExternalUserID", "State",
              "MsgId", "FailReason")
ADD_TYPES = ("add_external_contact", "add_half_external_contact")


def receipt_key(fields):
    material = json.dumps([fields.get(name, "") for name in KEY_FIELDS], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def occurred_at(fields, received_at):
    try:
        return datetime.fromtimestamp(int(fields.get("CreateTime", "")), tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return received_at


def receive_callback(tenant, fields, received_at):
    """Record and handle one decrypted callback. Returns (receipt, handled_now)."""
    key = receipt_key(fields)
    with transaction.atomic():
        try:
            with transaction.atomic():
                receipt = WeComCallback.objects.create(
                    tenant=tenant, key=key, event=fields.get("Event", "")[:60],
                    change_type=fields.get("ChangeType", "")[:60], userid=fields.get("UserID", "")[:64],
                    external_userid=fields.get("ExternalUserID", "")[:64], payload=fields,
                    received_at=received_at,
                )
        except IntegrityError:
            receipt = WeComCallback.objects.select_for_update().get(key=key)
            if receipt.outcome != WeComCallback.Outcome.FAILED:
                return receipt, False
        try:
            with transaction.atomic():
                outcome, member, detail = dispatch(tenant, fields, occurred_at(fields, received_at))
        except Exception as exc:  # noqa: BLE001 - a receipt must record any failure, then WeCom retries
            log.exception("wecom callback %s failed", key)
            outcome, member, detail = WeComCallback.Outcome.FAILED, None, f"{type(exc).__name__}: {exc}"
        receipt.outcome, receipt.member, receipt.detail = outcome, member, detail[:300]
        receipt.save(update_fields=["outcome", "member", "detail"])
    return receipt, True


def dispatch(tenant, fields, as_of):
    """(outcome, member or None, detail) for one callback."""
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    if event == "change_external_contact":
        if change in ADD_TYPES:
            return contact_added(tenant, fields, as_of)
        if change == "del_follow_user":
            return contact_lost(tenant, fields, as_of, ContactStatus.DELETED_BY_CUSTOMER, "customer")
        if change == "del_external_contact":
            return contact_lost(tenant, fields, as_of, ContactStatus.REMOVED_BY_GUIDE, "guide")
        if change == "edit_external_contact":
            return profile_changed(tenant, fields)
        if change == "transfer_fail":
            return transfer_failed(tenant, fields, as_of)
    return WeComCallback.Outcome.IGNORED, None, f"{event or fields.get('MsgType', '')}/{change}".strip("/")


# ---------------------------------------------------------------- contacts

def _member(external_userid):
    return Member.objects.filter(wecom_external_userid=external_userid).first() if external_userid else None


def _after_commit(tenant, member_ids, profile=True):
    ids = sorted(set(member_ids))
    if not ids:
        return
    transaction.on_commit(lambda: activity_recorded.send(sender=Member, tenant_id=tenant.pk, member_ids=ids))
    if profile:
        transaction.on_commit(lambda: members_changed.send(sender=Member, tenant_id=tenant.pk, member_ids=ids))


def contact_added(tenant, fields, as_of):
    """A customer added a guide: a join through the live code named by State, or (no State, or an
    unknown one) the contact recorded on the member found or created by external user id."""
    from campaigns.acquisition import join_from_wecom

    external_userid = fields.get("ExternalUserID", "")
    if not external_userid:
        return WeComCallback.Outcome.IGNORED, None, "no ExternalUserID"
    result = join_from_wecom(
        tenant, state=fields.get("State", ""), external_userid=external_userid, userid=fields.get("UserID", ""),
        welcome_code=fields.get("WelcomeCode", ""), as_of=as_of, name=_profile_name(tenant, external_userid),
    )
    if result.join is not None:
        detail = f"joined through live code {result.join.live_code_id}"
    else:
        detail = "contact added without a live code"
    return WeComCallback.Outcome.DONE, result.member, detail


def _profile_name(tenant, external_userid):
    client = WeComClient.for_tenant(tenant)
    if client is None:
        return ""
    try:
        return client.get_external_contact(external_userid)["external_contact"].get("name", "")
    except WeComError as exc:
        log.warning("wecom profile of %s not fetched: %s", external_userid, exc)
        return ""


def contact_lost(tenant, fields, as_of, status, by):
    """The customer deleted the guide (churn signal) or the guide removed the customer."""
    userid = fields.get("UserID", "")
    member = _member(fields.get("ExternalUserID", ""))
    if member is None:
        return WeComCallback.Outcome.IGNORED, None, "no member with this external user id"
    Event.objects.create(tenant=tenant, member=member, type=EventType.CONTACT_DELETED, occurred_at=as_of,
                         properties={"userid": userid, "by": by})
    owner = member.owner_guide
    # A customer may be the contact of several guides; losing one who is not the owner keeps the
    # member reachable, so only the owner's loss (or an unknown owner) changes the contact status.
    owners_loss = owner is None or not owner.wecom_userid or owner.wecom_userid == userid
    newer = member.contact_status_changed_at and member.contact_status_changed_at > as_of
    if owners_loss and not newer:
        Member.objects.filter(pk=member.pk).update(
            contact_status=status, contact_status_changed_at=as_of, updated_at=timezone.now()
        )
    _after_commit(tenant, [member.pk])
    detail = f"{status}" if owners_loss and not newer else "recorded; the member's owner guide is another"
    return WeComCallback.Outcome.DONE, member, detail


def profile_changed(tenant, fields):
    member = _member(fields.get("ExternalUserID", ""))
    if member is None:
        return WeComCallback.Outcome.IGNORED, None, "no member with this external user id"
    client = WeComClient.for_tenant(tenant)
    if client is None:
        return WeComCallback.Outcome.IGNORED, member, "WeCom API is not configured"
    profile = client.get_external_contact(member.wecom_external_userid)["external_contact"]
    name = (profile.get("name") or "")[:80]
    if name and name != member.name:
        Member.objects.filter(pk=member.pk).update(name=name, updated_at=timezone.now())
        transaction.on_commit(lambda: members_changed.send(sender=Member, tenant_id=tenant.pk, member_ids=[member.pk]))
        return WeComCallback.Outcome.DONE, member, "name refreshed"
    return WeComCallback.Outcome.DONE, member, "profile unchanged"


def transfer_failed(tenant, fields, as_of):
    """A handover of the customer to another guide failed in WeCom: keep it on the member's timeline."""
    member = _member(fields.get("ExternalUserID", ""))
    reason = fields.get("FailReason", "")
    if member is None:
        return WeComCallback.Outcome.IGNORED, None, f"transfer failed ({reason}); no member"
    Event.objects.create(tenant=tenant, member=member, type=EventType.CUSTOM, occurred_at=as_of,
                         properties={"name": "wecom_transfer_failed", "userid": fields.get("UserID", ""),
                                     "reason": reason})
    _after_commit(tenant, [member.pk], profile=False)
    return WeComCallback.Outcome.DONE, member, f"transfer failed: {reason}"
