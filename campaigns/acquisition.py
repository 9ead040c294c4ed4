"""Acquisition through channel live codes (渠道活码): saving a code, landing-page views, the SMS
one-time code, and the join itself, the same service behind every door (WeCom, the landing
page, the API).

A join is one transaction that starts by locking the live code's row: joins through one code
queue behind each other, so the round-robin position and the daily caps are read and moved by
one join at a time, and a replayed join (same ``key``) finds the first one and does nothing
more. Messages, the WeCom welcome and the campaign steps go out after the commit.
"""
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings as django_settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils.translation import gettext as _

from coupons.models import Coupon
from coupons.services import CouponError, issue_coupons
from members.models import EventType, Member, normalise_mobile
from members.services import ingest_events
from members.signals import members_changed
from scrm.models import Staff
from scrm.tenancy import tenant_context
from tagging.models import TagSource
from tagging.services import TaggingError, apply_tags

from .models import (
    Campaign, Channel, JoinVerification, LiveCode, LiveCodeDay, LiveCodeGuide, LiveCodeGuideDay, LiveCodeJoin,
    Message, OutreachSettings, Trigger,
)
from .services import enrol_members, local_day, render_script

log = logging.getLogger(__name__)

WELCOME_VARIABLES = ("name", "guide", "store", "coupon_code")
CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# At most one code a minute and five an hour per mobile number, whichever live code asks.
RESEND_AFTER = timedelta(seconds=60)
HOURLY_LIMIT = 5


class AcquisitionError(Exception):
    """A request the caller can fix. ``code`` names the reason (stable, for APIs and pages);
    ``errors`` maps field names to messages."""

    def __init__(self, errors, code="invalid"):
        if isinstance(errors, str):
            errors = {"non_field_errors": [errors]}
        super().__init__(" ".join(m for messages in errors.values() for m in messages))
        self.errors = errors
        self.code = code

    @property
    def message(self):
        return str(self)


@dataclass
class JoinResult:
    """What a join did. ``join`` is None for a WeCom contact that came without a known live code.
    ``replayed`` is True when the key had joined before and nothing was done this time."""

    member: Member
    guide: Staff | None
    join: LiveCodeJoin | None = None
    coupon: Coupon | None = None
    new_member: bool = False
    replayed: bool = False


# ---------------------------------------------------------------- saving a live code

def _welcome_errors(text):
    from .services import VARIABLE

    unknown = sorted({n for n in VARIABLE.findall(text or "") if n not in WELCOME_VARIABLES})
    if unknown:
        return [_("Unknown variables: %(names)s. Use %(known)s.") % {
            "names": ", ".join("{%s}" % n for n in unknown),
            "known": ", ".join("{%s}" % n for n in WELCOME_VARIABLES),
        }]
    return []


def _foreign(tenant, obj):
    return obj is not None and obj.tenant_id != tenant.pk


def _validate(tenant, code, pool, tags):
    errors = {}

    def add(field, message):
        errors.setdefault(field, []).append(message)

    if not (code.name or "").strip():
        add("name", _("Give the live code a name."))
    if code.channel_type not in LiveCode.ChannelType.values:
        add("channel_type", _("Choose a channel type."))
    if code.rule not in LiveCode.Rule.values:
        add("rule", _("Choose an assignment rule."))
    if code.status not in LiveCode.Status.values:
        add("status", _("Choose a status."))
    for field in ("store", "fixed_guide", "backup_guide", "welcome_coupon"):
        if _foreign(tenant, getattr(code, field)):
            add(field, _("Not found."))
    for field in ("fixed_guide", "backup_guide"):
        guide = getattr(code, field)
        if guide is not None and not _foreign(tenant, guide) and not guide.active:
            add(field, _("%(name)s is no longer active.") % {"name": guide.name})
    seen = set()
    for guide in pool:
        if _foreign(tenant, guide):
            add("pool", _("No guide with id %(id)s.") % {"id": guide.pk})
        elif guide.pk in seen:
            add("pool", _("%(name)s is listed twice.") % {"name": guide.name})
        seen.add(guide.pk)
    if code.rule == LiveCode.Rule.FIXED and code.fixed_guide is None:
        add("fixed_guide", _("Choose the guide who takes every join."))
    if code.rule in (LiveCode.Rule.ROUND_ROBIN, LiveCode.Rule.LEAST_LOADED) and not pool:
        add("pool", _("Add at least one guide for this rule."))
    if code.daily_cap is not None and code.daily_cap < 1:
        add("daily_cap", _("Ensure this value is greater than or equal to 1."))
    if (code.work_start is None) != (code.work_end is None):
        add("work_end" if code.work_end is None else "work_start", _("Give both ends of the working hours, or neither."))
    elif code.work_start is not None and code.work_start == code.work_end:
        add("work_end", _("Working hours need a different start and end."))
    if code.starts_at and code.ends_at and code.ends_at <= code.starts_at:
        add("ends_at", _("Must be after the start."))
    if code.cost is not None and code.cost < 0:
        add("cost", _("Cannot be negative."))
    for message in _welcome_errors(code.welcome_message):
        add("welcome_message", message)
    exclusive = {}
    for tag in tags:
        if _foreign(tenant, tag):
            add("tags", _("No tag with id %(id)s.") % {"id": tag.pk})
        elif tag.group.automatic:
            add("tags", _("%(tag)s is kept by its rule and cannot be given on join.") % {"tag": tag.name})
        elif tag.group.exclusive:
            if tag.group_id in exclusive:
                add("tags", _("%(group)s holds one tag per member; choose one of its tags.") % {"group": tag.group.name})
            exclusive[tag.group_id] = tag
    if errors:
        raise AcquisitionError(errors)


SAVED_FIELDS = (
    "name", "channel_type", "store", "rule", "fixed_guide", "backup_guide", "daily_cap", "work_start", "work_end",
    "welcome_message", "welcome_coupon", "reassign_existing", "starts_at", "ends_at", "status", "cost",
)


def save_live_code(tenant, data, live_code=None, *, by=None, as_of):
    """Create or update a live code from ``data`` (model field names; ``store``, ``fixed_guide``,
    ``backup_guide``, ``welcome_coupon`` are objects, ``pool`` the guides in round-robin order,
    ``tags`` the Tag objects given on join). Fields left out keep their value.

    Raises AcquisitionError with field errors (another brand's objects are "not found" on their
    field). The printed code (``code``) is made once and never changes. When WeCom is set up for
    the brand, the code's contact way is created on first save and updated when the guides behind
    it change; a WeCom failure does not undo the save: it is kept on ``wecom_sync_error`` and
    ``sync_contact_way`` tries again. Archiving removes the contact way; an archived code made
    active or paused again gets a new one.
    """
    was_archived = live_code is not None and live_code.status == LiveCode.Status.ARCHIVED
    code = live_code or LiveCode(tenant=tenant, created_by=by)
    for field in SAVED_FIELDS:
        if field in data:
            setattr(code, field, data[field])
    if code.rule is None:
        code.rule = LiveCode.Rule.ROUND_ROBIN
    if code.status is None:
        code.status = LiveCode.Status.ACTIVE
    old_pool = list(code.pool.order_by("position", "pk").values_list("guide_id", flat=True)) if code.pk else None
    pool = list(data["pool"]) if data.get("pool") is not None else (
        list(Staff.objects.filter(pk__in=old_pool)) if old_pool else []
    )
    if old_pool and data.get("pool") is None:
        pool.sort(key=lambda guide: old_pool.index(guide.pk))
    tags = list(data["tags"]) if data.get("tags") is not None else (list(code.tags.all()) if code.pk else [])
    _validate(tenant, code, pool, tags)
    old_wecom = _wecom_user_ids(live_code) if live_code is not None else None
    with transaction.atomic():
        code.save()
        if data.get("pool") is not None and [g.pk for g in pool] != old_pool:
            LiveCodeGuide.objects.filter(live_code=code).delete()
            LiveCodeGuide.objects.bulk_create([
                LiveCodeGuide(tenant=tenant, live_code=code, guide=guide, position=position)
                for position, guide in enumerate(pool)
            ])
            code.rr_position = -1
            LiveCode.objects.filter(pk=code.pk).update(rr_position=-1)
        if data.get("tags") is not None:
            code.tags.set(tags)
    _follow_in_wecom(code, as_of, resync=was_archived or _wecom_user_ids(code) != old_wecom)
    return code


def set_live_code_status(live_code, status, as_of):
    """Pause, activate or archive a code (the dashboard's buttons), followed in WeCom like a save."""
    if status not in LiveCode.Status.values:
        raise AcquisitionError({"status": [_("Choose a status.")]})
    was_archived = live_code.status == LiveCode.Status.ARCHIVED
    LiveCode.objects.filter(pk=live_code.pk).update(status=status, updated_at=as_of)
    live_code.status = status
    _follow_in_wecom(live_code, as_of, resync=was_archived)
    return live_code


def _follow_in_wecom(live_code, as_of, resync):
    """An archived code takes no joins, so its WeCom contact way goes (``remove_contact_way``). A
    code in use has one: made when it has none (a new one after archiving), updated on ``resync``."""
    if live_code.status == LiveCode.Status.ARCHIVED:
        remove_contact_way(live_code, as_of)
    elif resync or not live_code.wecom_config_id:
        sync_contact_way(live_code, as_of)


# ---------------------------------------------------------------- WeCom contact way

# WeCom does not know the config id: the contact way is gone there already.
CONTACT_WAY_UNKNOWN = {41044}


def _wecom_client(tenant):
    from .wecom.client import WeComClient

    return WeComClient.for_tenant(tenant)


def _wecom_user_ids(code):
    """The WeCom user ids the code's contact way offers: the fixed guide, or the pool in order."""
    if code.rule == LiveCode.Rule.FIXED:
        guides = [code.fixed_guide] if code.fixed_guide_id else []
    else:
        guides = [entry.guide for entry in code.pool.select_related("guide").order_by("position", "pk")]
    return [g.wecom_userid for g in guides if g is not None and g.active and g.wecom_userid]


def _store_wecom(live_code, fields, **only_if):
    """Write the code's WeCom fields (only while the row still matches ``only_if``) and mirror them
    on ``live_code``."""
    if LiveCode.objects.filter(pk=live_code.pk, **only_if).update(**fields):
        for field, value in fields.items():
            setattr(live_code, field, value)


def sync_contact_way(live_code, as_of):
    """Create or update the code's WeCom contact way (its state is the printed code). Does nothing
    when WeCom is not set up for the brand. Returns whether the contact way is in sync; a failure
    is kept on ``wecom_sync_error``."""
    from .wecom.client import WeComError

    client = _wecom_client(live_code.tenant)
    if client is None:
        return False
    user_ids = _wecom_user_ids(live_code)
    fields = {}
    if not user_ids:
        fields = {"wecom_sync_error": _("No guide behind this code has a WeCom user id.")}
    else:
        try:
            if live_code.wecom_config_id:
                client.update_contact_way(live_code.wecom_config_id, user_ids, live_code.code)
                fields = {"wecom_synced_at": as_of, "wecom_sync_error": ""}
            else:
                made = client.add_contact_way(live_code.code, user_ids, remark=live_code.name[:30])
                fields = {"wecom_config_id": made["config_id"], "wecom_qr_url": made.get("qr_code", ""),
                          "wecom_synced_at": as_of, "wecom_sync_error": ""}
        except WeComError as exc:
            fields = {"wecom_sync_error": str(exc)[:500]}
    _store_wecom(live_code, fields)
    return not live_code.wecom_sync_error


def remove_contact_way(live_code, as_of):
    """Delete the code's WeCom contact way and clear its config id and WeCom QR code. Does nothing
    for a code without one. Returns whether it is gone; when WeCom is not set up or fails, the
    config id stays (with the failure on ``wecom_sync_error``) for ``retry_contact_way_removals``."""
    if not live_code.wecom_config_id:
        return True
    client = _wecom_client(live_code.tenant)
    if client is None:
        return False
    return _remove_contact_way(client, live_code, as_of) is None


def _remove_contact_way(client, live_code, as_of):
    """Returns WeCom's error when the contact way is still there, else None."""
    from .wecom.client import WeComError

    config_id = live_code.wecom_config_id
    try:
        client.del_contact_way(config_id)
    except WeComError as exc:
        if exc.errcode not in CONTACT_WAY_UNKNOWN:
            _store_wecom(live_code, {"wecom_sync_error": str(exc)[:500]}, wecom_config_id=config_id)
            return exc
    # Only if nothing made another contact way for the code meanwhile.
    _store_wecom(live_code, {"wecom_config_id": "", "wecom_qr_url": "", "wecom_synced_at": as_of,
                             "wecom_sync_error": ""}, wecom_config_id=config_id)
    return None


def contact_ways_to_remove(codes):
    """The archived codes among ``codes`` whose WeCom contact way is still there: WeCom failed
    (or was not set up) when they were archived."""
    return codes.filter(status=LiveCode.Status.ARCHIVED).exclude(wecom_config_id="")


def retry_contact_way_removals(tenant, as_of):
    """Delete in WeCom the contact ways of archived codes that are still there. Stops at WeCom's
    first transient failure (busy, rate limit, network): the next run carries on. Returns
    {"removed": n, "failed": n}."""
    summary = {"removed": 0, "failed": 0}
    client = _wecom_client(tenant)
    if client is None:
        return summary
    for code in contact_ways_to_remove(LiveCode.objects.filter(tenant=tenant)).order_by("pk"):
        error = _remove_contact_way(client, code, as_of)
        if error is None:
            summary["removed"] += 1
            continue
        summary["failed"] += 1
        if error.transient:
            break
    return summary


# ---------------------------------------------------------------- landing page

def record_landing_view(live_code, as_of):
    """Count one view of the code's landing page on the tenant's local day (one upsert)."""
    table = connection.ops.quote_name(LiveCodeDay._meta.db_table)
    day = local_day(live_code.tenant, as_of)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, live_code_id, day, views) VALUES (%s, %s, %s, 1) "
            f"ON CONFLICT (tenant_id, live_code_id, day) DO UPDATE SET views = {table}.views + 1",
            [live_code.tenant_id, live_code.pk, day],
        )


def check_joinable(live_code, as_of):
    """Raise AcquisitionError (code paused, archived, not_started or ended) unless the code takes
    joins at ``as_of``."""
    if live_code.status == LiveCode.Status.PAUSED:
        raise AcquisitionError(_("This live code is paused."), code="paused")
    if live_code.status == LiveCode.Status.ARCHIVED:
        raise AcquisitionError(_("This live code is no longer in use."), code="archived")
    zone = live_code.tenant.zone
    if live_code.starts_at and as_of < live_code.starts_at:
        raise AcquisitionError(
            _("This live code takes joins from %(when)s.") % {"when": f"{live_code.starts_at.astimezone(zone):%Y-%m-%d %H:%M}"},
            code="not_started",
        )
    if live_code.ends_at and as_of >= live_code.ends_at:
        raise AcquisitionError(
            _("This live code took joins until %(when)s.") % {"when": f"{live_code.ends_at.astimezone(zone):%Y-%m-%d %H:%M}"},
            code="ended",
        )


def _clean_mobile(mobile):
    try:
        value = normalise_mobile(mobile)
    except ValueError:
        value = ""
    if not value:
        raise AcquisitionError({"mobile": [_("Enter a valid mobile number.")]}, code="invalid_mobile")
    return value


def _hash_code(live_code, mobile, code):
    message = f"{live_code.pk}:{mobile}:{code}".encode()
    return hmac.new(django_settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _sms_channel(tenant):
    """SMS through the brand's gateway; without one, the console sender (the embedded default)."""
    settings = OutreachSettings.objects.filter(tenant=tenant).first()
    return Channel.SMS if settings is not None and settings.sms_url else Channel.CONSOLE


def _deliver_after_commit(tenant, as_of):
    from .tasks import deliver_messages

    tenant_id, when = tenant.pk, as_of.isoformat()
    transaction.on_commit(lambda: deliver_messages.delay(tenant_id, when))


def start_verification(live_code, mobile, as_of):
    """Send a 6-digit one-time code by SMS to ``mobile`` for joining through ``live_code``.

    Only a hash of the code is kept; it is valid for 10 minutes and 5 tries. One code a minute and
    five an hour per mobile number (AcquisitionError code ``rate_limited``; ``retry_after`` seconds
    on the error). The SMS goes through the outbox: the brand's SMS gateway, or the console sender
    when none is set. Returns the JoinVerification.
    """
    tenant = live_code.tenant
    check_joinable(live_code, as_of)
    mobile = _clean_mobile(mobile)
    with transaction.atomic():
        # The code's row lock queues two requests for one number, so the limit holds for both.
        LiveCode.objects.filter(pk=live_code.pk).update(rr_position=F("rr_position"))
        recent = list(
            JoinVerification.objects.filter(mobile=mobile, created_at__gt=as_of - timedelta(hours=1),
                                            created_at__lte=as_of).order_by("-created_at").values_list("created_at", flat=True)
        )
        wait = None
        if recent and as_of - recent[0] < RESEND_AFTER:
            wait = RESEND_AFTER - (as_of - recent[0])
        elif len(recent) >= HOURLY_LIMIT:
            wait = recent[HOURLY_LIMIT - 1] + timedelta(hours=1) - as_of
        if wait is not None:
            seconds = max(int(wait.total_seconds()) + (1 if wait.microseconds else 0), 1)
            error = AcquisitionError(
                {"mobile": [_("Codes for this number were asked for too often; ask again in %(seconds)d seconds.") % {"seconds": seconds}]},
                code="rate_limited",
            )
            error.retry_after = seconds
            raise error
        code = "".join(secrets.choice("0123456789") for _i in range(CODE_DIGITS))
        verification = JoinVerification.objects.create(
            tenant=tenant, live_code=live_code, mobile=mobile, code_hash=_hash_code(live_code, mobile, code),
            created_at=as_of, expires_at=as_of + CODE_LIFETIME,
        )
        body = _("Your verification code is %(code)s. It is valid for %(minutes)d minutes.") % {
            "code": code, "minutes": int(CODE_LIFETIME.total_seconds() // 60),
        }
        Message.objects.create(
            tenant=tenant, channel=_sms_channel(tenant), recipient=mobile, body=body,
            idempotency_key=f"livecode-verify:{verification.pk}", created_at=as_of, next_attempt_at=as_of,
        )
        _deliver_after_commit(tenant, as_of)
    return verification


def confirm_verification(live_code, mobile, code, as_of):
    """Check the one-time code for ``mobile`` and join through the landing page. Returns a
    JoinResult; a second confirmation of the same number replays the first join.

    Raises AcquisitionError with code ``no_code`` (none asked for, or already used), ``expired``,
    ``too_many_attempts`` or ``wrong_code`` (on field ``code``)."""
    check_joinable(live_code, as_of)
    mobile = _clean_mobile(mobile)
    code = (code or "").strip()
    verification = (
        JoinVerification.objects.filter(live_code=live_code, mobile=mobile, used_at__isnull=True, created_at__lte=as_of)
        .order_by("-created_at", "-pk").first()
    )
    if verification is None:
        raise AcquisitionError({"code": [_("Ask for a code first.")]}, code="no_code")
    if as_of >= verification.expires_at:
        raise AcquisitionError({"code": [_("This code has expired; ask for a new one.")]}, code="expired")
    # A conditional increment: of many guesses at once, only MAX_ATTEMPTS are ever checked.
    counted = JoinVerification.objects.filter(pk=verification.pk, attempts__lt=MAX_ATTEMPTS).update(
        attempts=F("attempts") + 1
    )
    if not counted:
        raise AcquisitionError(
            {"code": [_("Too many wrong codes; ask for a new one.")]}, code="too_many_attempts"
        )
    if not hmac.compare_digest(verification.code_hash, _hash_code(live_code, mobile, code)):
        left = MAX_ATTEMPTS - verification.attempts - 1
        if left <= 0:
            raise AcquisitionError({"code": [_("Too many wrong codes; ask for a new one.")]}, code="too_many_attempts")
        raise AcquisitionError(
            {"code": [_("The code is not right; %(left)d tries left.") % {"left": left}]}, code="wrong_code"
        )
    JoinVerification.objects.filter(pk=verification.pk, used_at__isnull=True).update(used_at=as_of)
    return join(live_code, door=LiveCodeJoin.Door.LANDING, key=f"landing:{live_code.pk}:{mobile}", mobile=mobile,
                as_of=as_of)


# ---------------------------------------------------------------- the join

def new_external_id():
    return "LC" + secrets.token_hex(6).upper()


def _lock(live_code):
    """Lock the code's row for the rest of the transaction and read it fresh. The no-op UPDATE is
    also the transaction's first write, so SQLite takes its write lock before anything is read."""
    LiveCode.objects.filter(pk=live_code.pk).update(rr_position=F("rr_position"))
    return LiveCode.objects.select_for_update(of=("self",)).select_related(
        "tenant", "store", "fixed_guide", "backup_guide", "welcome_coupon"
    ).get(pk=live_code.pk)


def _in_working_hours(code, as_of):
    if code.work_start is None or code.work_end is None:
        return True
    now = as_of.astimezone(code.tenant.zone).time()
    if code.work_start < code.work_end:
        return code.work_start <= now < code.work_end
    return now >= code.work_start or now < code.work_end


def _count_day(code, guide_id, day, cap=None):
    """Add one join to the guide's counter for the day; with ``cap``, only while under it.
    Returns whether the join was counted."""
    table = connection.ops.quote_name(LiveCodeGuideDay._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, live_code_id, guide_id, day, joins) VALUES (%s, %s, %s, %s, 0) "
            f"ON CONFLICT (tenant_id, live_code_id, guide_id, day) DO NOTHING",
            [code.tenant_id, code.pk, guide_id, day],
        )
    counters = LiveCodeGuideDay.objects.filter(live_code_id=code.pk, guide_id=guide_id, day=day)
    if cap is not None:
        counters = counters.filter(joins__lt=cap)
    return bool(counters.update(joins=F("joins") + 1))


def _candidates(code):
    """The code's guides in the order the rule tries them."""
    if code.rule == LiveCode.Rule.FIXED:
        return [(None, code.fixed_guide)] if code.fixed_guide_id and code.fixed_guide.active else []
    pool = [
        (entry.position, entry.guide)
        for entry in LiveCodeGuide.objects.filter(live_code=code, guide__active=True).select_related("guide")
        .order_by("position", "pk")
    ]
    if code.rule == LiveCode.Rule.LEAST_LOADED:
        owned = dict(
            Member.objects.filter(owner_guide_id__in=[g.pk for _p, g in pool]).order_by()
            .values("owner_guide_id").annotate(n=Count("pk")).values_list("owner_guide_id", "n")
        )
        return sorted(pool, key=lambda entry: (owned.get(entry[1].pk, 0), entry[0]))
    after = [entry for entry in pool if entry[0] > code.rr_position]
    return after + [entry for entry in pool if entry[0] <= code.rr_position]


def _assign(code, as_of):
    """Pick the guide for a new owner by the code's rule, counting the join against the daily cap.
    Overflow goes to the next guide in order; when all are full, or outside working hours, to the
    backup guide (None when there is no backup and everyone is full)."""
    day = local_day(code.tenant, as_of)
    backup = code.backup_guide if code.backup_guide_id and code.backup_guide.active else None
    if backup is not None and not _in_working_hours(code, as_of):
        _count_day(code, backup.pk, day)
        return backup
    for position, guide in _candidates(code):
        if _count_day(code, guide.pk, day, code.daily_cap):
            if position is not None and code.rule == LiveCode.Rule.ROUND_ROBIN:
                LiveCode.objects.filter(pk=code.pk).update(rr_position=position)
                code.rr_position = position
            return guide
    if backup is not None:
        _count_day(code, backup.pk, day)
    return backup


def _find_member(mobile, external_userid):
    found = None
    if mobile:
        found = Member.objects.filter(mobile=mobile).first()
    if found is None and external_userid:
        found = Member.objects.filter(wecom_external_userid=external_userid).first()
    return found


def _find_or_create_member(code, mobile, external_userid, name, as_of, store):
    """(member, created). A concurrent join creating the same person makes this one find theirs."""
    member = _find_member(mobile, external_userid)
    if member is not None:
        return member, False
    try:
        with transaction.atomic():
            return Member.objects.create(
                tenant=code.tenant, external_id=new_external_id(), name=(name or "")[:80], mobile=mobile or None,
                wecom_external_userid=external_userid or None, joined_at=as_of, source_channel=code.channel_type if code else "",
                home_store=store,
            ), True
    except IntegrityError:
        member = _find_member(mobile, external_userid)
        if member is None:
            raise
        return member, False


def _fill_blanks(member, mobile, external_userid, name, store):
    """Complete what the member lacks from the join; never overwrite what is known."""
    changed = []
    if mobile and not member.mobile and not Member.objects.filter(mobile=mobile).exists():
        member.mobile = mobile
        changed.append("mobile")
    if external_userid and not member.wecom_external_userid and not Member.objects.filter(
        wecom_external_userid=external_userid
    ).exists():
        member.wecom_external_userid = external_userid
        changed.append("wecom_external_userid")
    if name and not member.name:
        member.name = name[:80]
        changed.append("name")
    if store is not None and member.home_store_id is None:
        member.home_store = store
        changed.append("home_store")
    return changed


def _guide_by_userid(userid):
    if not userid:
        return None
    return Staff.objects.filter(wecom_userid=userid, active=True).order_by("pk").first()


def join(live_code, *, door, key, mobile=None, wecom_external_userid=None, name="", wecom_userid=None,
         welcome_code=None, as_of):
    """Join a customer through ``live_code``: one transaction, idempotent by ``key`` (a replay
    returns the first join with ``replayed=True`` and issues, sends and counts nothing again).

    The member is found by mobile, then by WeCom external user id, or created (source channel the
    code's channel type, home store the code's store, joined at ``as_of``). A member without a
    guide, or any member when the code reassigns, gets the guide the customer added on WeCom
    (``wecom_userid``), else one picked by the code's rule under the daily cap and working hours.
    Then the code's tags, the welcome coupon (once per member and code), the welcome message (WeCom
    welcome with ``welcome_code`` after the commit, else SMS through the outbox), a contact_added
    event, the members_changed signal and enrolment in the live_code_joined campaigns.

    Raises AcquisitionError when the code takes no joins now or no person is named.
    """
    mobile = _clean_mobile(mobile) if mobile else None
    wecom_external_userid = (wecom_external_userid or "").strip() or None
    if not mobile and not wecom_external_userid:
        raise AcquisitionError({"mobile": [_("Give a mobile number or a WeCom external user id.")]}, code="no_person")
    tenant = live_code.tenant
    try:
        with transaction.atomic():
            code = _lock(live_code)
            replay = _replay(key)
            if replay is not None:
                return replay
            check_joinable(code, as_of)
            result, after = _join_locked(code, door, key, mobile, wecom_external_userid, name, wecom_userid, as_of)
            _after_commit(tenant, code, result, door, welcome_code, wecom_userid, as_of, after)
            return result
    except IntegrityError:
        replay = _replay(key)
        if replay is None:
            raise
        return replay


def _replay(key):
    found = LiveCodeJoin.objects.select_related("member", "guide", "coupon").filter(key=key).first()
    if found is None:
        return None
    return JoinResult(member=found.member, guide=found.guide, join=found, coupon=found.coupon,
                      new_member=found.new_member, replayed=True)


def _join_locked(code, door, key, mobile, external_userid, name, wecom_userid, as_of):
    tenant = code.tenant
    member, created = _find_or_create_member(code, mobile, external_userid, name, as_of, code.store)
    changed = [] if created else _fill_blanks(member, mobile, external_userid, name, code.store)
    previous = member.owner_guide_id
    guide_changed = False
    if previous is None or code.reassign_existing:
        added = _guide_by_userid(wecom_userid)
        if added is not None:
            _count_day(code, added.pk, local_day(tenant, as_of))
            guide = added
        else:
            guide = _assign(code, as_of)
        if guide is not None and guide.pk != previous:
            member.owner_guide = guide
            changed.append("owner_guide")
            guide_changed = previous is not None
    if changed:
        member.updated_at = as_of
        member.save(update_fields=sorted(set(changed)) + ["updated_at"])
    guide = member.owner_guide if member.owner_guide_id else None
    if code.tags.exists():
        try:
            apply_tags(tenant, Member.objects.filter(pk=member.pk), add=list(code.tags.values_list("pk", flat=True)),
                       source=TagSource.CAMPAIGN, as_of=as_of)
        except TaggingError as exc:
            log.warning("live code %s: tags not applied to member %s: %s", code.pk, member.pk, exc.errors)
    coupon = _welcome_coupon(code, member, as_of)
    record = LiveCodeJoin.objects.create(
        tenant=tenant, live_code=code, member=member, guide=guide, store=code.store, door=door, key=key,
        new_member=created, guide_changed=guide_changed, coupon=coupon, joined_at=as_of,
    )
    ingest_events(tenant, [(0, {
        "external_id": f"livecode-join:{record.pk}", "member_external_id": member.external_id,
        "type": EventType.CONTACT_ADDED, "occurred_at": as_of,
        "properties": {"live_code": code.pk, "door": door, "guide": guide.pk if guide else None},
    })])
    enrolled = _enrol(code, member, as_of)
    result = JoinResult(member=member, guide=guide, join=record, coupon=coupon, new_member=created)
    return result, enrolled


def _welcome_coupon(code, member, as_of):
    if not code.welcome_coupon_id:
        return None
    prefix = f"livecode:{code.pk}:welcome"
    try:
        issue_coupons(code.tenant, code.welcome_coupon_id, [member.pk], as_of=as_of, source=Coupon.Source.LIVE_CODE,
                      source_ref=code.name[:120], key_prefix=prefix)
    except CouponError as exc:
        log.warning("live code %s: no welcome coupon for member %s: %s", code.pk, member.pk, exc.message)
    return Coupon.objects.select_related("template").filter(issue_key=f"{prefix}:{member.pk}").first()


def _enrol(code, member, as_of):
    """Enrol the member in the active live_code_joined campaigns for any code or this one."""
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE, trigger=Trigger.LIVE_CODE_JOINED).filter(
        Q(trigger_live_code__isnull=True) | Q(trigger_live_code=code)
    ).select_related("tenant", "segment")
    enrolled = []
    for campaign in campaigns:
        if enrol_members(campaign, Member.objects.filter(pk=member.pk), as_of):
            enrolled.append(campaign.pk)
    return enrolled


def welcome_text(code, member, guide, coupon):
    return render_script(code.welcome_message, {
        "name": member.name or _("customer"),
        "guide": guide.name if guide else "",
        "store": code.store.name if code.store_id else "",
        "coupon_code": coupon.display_code if coupon else "",
    })


def _after_commit(tenant, code, result, door, welcome_code, wecom_userid, as_of, enrolled):
    member, join_record = result.member, result.join
    tenant_id, member_id = tenant.pk, member.pk
    transaction.on_commit(lambda: members_changed.send(sender=Member, tenant_id=tenant_id, member_ids=[member_id]))
    text = welcome_text(code, member, result.guide, result.coupon) if code.welcome_message.strip() else ""
    key = f"livecode-join:{join_record.pk}:welcome"
    if text and door == LiveCodeJoin.Door.WECOM and welcome_code:
        transaction.on_commit(lambda: _send_wecom_welcome(
            tenant, welcome_code, text, key, member_id, member.wecom_external_userid or "", wecom_userid or "", as_of,
        ))
    elif text and member.mobile:
        Message.objects.create(
            tenant=tenant, channel=_sms_channel(tenant), recipient=member.mobile, body=text, idempotency_key=key,
            member=member, created_at=as_of, next_attempt_at=as_of,
        )
        _deliver_after_commit(tenant, as_of)
    if enrolled:
        from .tasks import run_due_steps

        when = as_of.isoformat()
        transaction.on_commit(lambda: run_due_steps.delay(tenant_id, when, campaign_ids=enrolled))


def _send_wecom_welcome(tenant, welcome_code, text, key, member_id, external_userid, userid, as_of):
    """WeCom's welcome message (send_welcome_msg with the callback's WelcomeCode, valid for seconds
    only, so it is sent at once and not retried). The outcome is kept in the outbox as a sent or
    dead message; a failure is recorded, never raised to the callback."""
    from .wecom.client import WeComError

    status, error, attempts = Message.Status.SENT, "", 1
    with tenant_context(tenant):
        client = _wecom_client(tenant)
        if client is None:
            status, error = Message.Status.DEAD, _("WeCom is not set up for this brand.")
        else:
            try:
                client.send_welcome_msg(welcome_code, text)
            except (WeComError, OSError) as exc:
                status, error = Message.Status.DEAD, str(exc)[:2000]
                log.warning("WeCom welcome for member %s not sent: %s", member_id, exc)
        Message.objects.bulk_create([Message(
            tenant=tenant, channel=Channel.WECOM, recipient=external_userid, sender_ref=userid, body=text,
            status=status, attempts=attempts, last_error=error, idempotency_key=key, member_id=member_id,
            created_at=as_of, next_attempt_at=as_of, sent_at=as_of if status == Message.Status.SENT else None,
        )], ignore_conflicts=True)


# ---------------------------------------------------------------- WeCom callbacks

def join_from_wecom(tenant, *, state, external_userid, userid, welcome_code, as_of, name=""):
    """A customer added a guide on WeCom (add_external_contact). With the State of one of the
    brand's live codes that takes joins, this is a join through that code (owner: the guide the
    customer added, welcome through ``welcome_code``); otherwise the contact is recorded by
    ``add_wecom_contact``. A callback WeCom sends again joins nothing twice. Returns a JoinResult."""
    with tenant_context(tenant):
        code = LiveCode.objects.select_related("tenant").filter(code=state).first() if state else None
        if code is not None:
            try:
                check_joinable(code, as_of)
            except AcquisitionError:
                code = None
        if code is None:
            return add_wecom_contact(tenant, external_userid=external_userid, userid=userid, as_of=as_of, name=name)
        key = f"wecom:{code.pk}:{userid}:{external_userid}:{welcome_code or int(as_of.timestamp())}"
        return join(code, door=LiveCodeJoin.Door.WECOM, key=key[:200], wecom_external_userid=external_userid,
                    name=name, wecom_userid=userid, welcome_code=welcome_code, as_of=as_of)


def add_wecom_contact(tenant, *, external_userid, userid, as_of, name=""):
    """A WeCom contact added without a known live code (no State, or an unknown or stopped one):
    find or create the member by external user id (source channel wecom), give them the guide the
    customer added when they have none, and record a contact_added event (once per guide, contact
    and moment, so a repeated callback records nothing twice). Returns a JoinResult without a join."""
    external_userid = (external_userid or "").strip()
    if not external_userid:
        raise AcquisitionError({"external_userid": [_("Give the WeCom external user id.")]}, code="no_person")
    with tenant_context(tenant), transaction.atomic():
        member = Member.objects.filter(wecom_external_userid=external_userid).first()
        created = False
        if member is None:
            try:
                with transaction.atomic():
                    member = Member.objects.create(
                        tenant=tenant, external_id=new_external_id(), name=(name or "")[:80],
                        wecom_external_userid=external_userid, joined_at=as_of, source_channel="wecom",
                    )
                    created = True
            except IntegrityError:
                member = Member.objects.get(wecom_external_userid=external_userid)
        guide = _guide_by_userid(userid)
        changed = []
        if member.owner_guide_id is None and guide is not None:
            member.owner_guide = guide
            changed.append("owner_guide")
        if name and not member.name:
            member.name = name[:80]
            changed.append("name")
        if changed:
            member.updated_at = as_of
            member.save(update_fields=changed + ["updated_at"])
        event_id = hashlib.sha256(f"{userid}:{external_userid}:{as_of.isoformat()}".encode()).hexdigest()[:40]
        ingest_events(tenant, [(0, {
            "external_id": f"wecom-add:{event_id}", "member_external_id": member.external_id,
            "type": EventType.CONTACT_ADDED, "occurred_at": as_of, "properties": {"guide_userid": userid or ""},
        })])
        member_id = member.pk
        if created or changed:
            transaction.on_commit(
                lambda: members_changed.send(sender=Member, tenant_id=tenant.pk, member_ids=[member_id])
            )
    owner = member.owner_guide if member.owner_guide_id else None
    return JoinResult(member=member, guide=owner, new_member=created)
