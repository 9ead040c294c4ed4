"""Issue a coupon to every member of a segment, from the dashboard, as a background run.

A run is named by a key the confirm form carries (one per form shown), recorded once with the
request-replay record (``IdempotencyRecord``, unique per brand, scope and key): a double click or a
resubmitted form finds the run already there and starts nothing. The run freezes the segment's
members in a snapshot, then issues in batches with the issue key ``segment:<s>:run:<key>:<member>``,
so a retried or restarted task issues nothing twice; stock and per-member limits hold as in every
issue (``coupons.services.issue_coupons``).
"""
import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from coupons import services as coupons
from coupons.models import Coupon, CouponTemplate
from scrm.models import IdempotencyRecord, Staff

from .models import Segment, SegmentSnapshot
from .services import count_segment, snapshot_members, take_snapshot

SCOPE = "segment-coupons:{segment_id}"
RUN_KEY = re.compile(r"^[0-9a-f]{32}$")


class IssueRunError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def valid_run_key(value):
    return bool(value and RUN_KEY.match(value))


def find_run(segment, run_key):
    return IdempotencyRecord.objects.filter(scope=SCOPE.format(segment_id=segment.pk), key=run_key).first()


def start_run(tenant, segment, template, run_key, staff=None):
    """Record the run named ``run_key``; returns (record, created). Only a newly created run is to
    be queued. The same key with another coupon template is refused."""
    if not valid_run_key(run_key):
        raise IssueRunError(_("This form has expired; open it again."))
    if not template.active:
        raise IssueRunError(_("The template %(name)s is not active.") % {"name": template.name})
    state = {"status": "queued", "segment_id": segment.pk, "template_id": template.pk, "template": template.name,
             "staff_id": staff.pk if staff else None}
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                tenant=tenant, scope=SCOPE.format(segment_id=segment.pk), key=run_key,
                fingerprint=str(template.pk), status_code=202, response=state,
            )
        return record, True
    except IntegrityError:
        record = find_run(segment, run_key)
        if record is None:
            raise
        if record.fingerprint != str(template.pk):
            raise IssueRunError(_("This form was already sent with another coupon template.")) from None
        return record, False


def _save(record, **changes):
    record.response = {**record.response, **changes}
    IdempotencyRecord.objects.filter(pk=record.pk).update(response=record.response, status_code=record.status_code)


def run_issue(tenant, record_id, as_of):
    """Issue the run's coupons (the task's work). Running it again issues nothing twice."""
    record = IdempotencyRecord.objects.get(pk=record_id)
    state = record.response
    if state.get("status") in ("done", "failed"):
        return state
    segment = Segment.objects.get(pk=state["segment_id"])
    staff = Staff.objects.filter(pk=state.get("staff_id")).first()
    _save(record, status="running")
    snapshot = SegmentSnapshot.objects.filter(pk=state.get("snapshot_id")).first() if state.get("snapshot_id") else None
    if snapshot is None:
        # The members are frozen once, so a restarted run issues to the same people.
        with transaction.atomic():
            snapshot = take_snapshot(segment, as_of, staff=staff)
            _save(record, snapshot_id=snapshot.pk, members=snapshot.member_count)
    try:
        result = coupons.issue_coupons(
            tenant, state["template_id"], lambda: snapshot_members(snapshot), as_of=as_of, source=Coupon.Source.MANUAL,
            source_ref=f"segment:{segment.pk}", key_prefix=f"segment:{segment.pk}:run:{record.key}", issued_by=staff,
        )
    except coupons.CouponError as error:
        record.status_code = 200
        _save(record, status="failed", error=error.message)
        return record.response
    record.status_code = 200
    _save(
        record, status="done", issued=result.issued + result.already_issued, over_limit=result.over_limit,
        out_of_stock=result.out_of_stock,
    )
    return record.response


def preview(tenant, segment, template, as_of):
    """What the confirm step shows: members in the segment now, the stock left, the most that can be issued."""
    template = CouponTemplate.objects.get(pk=template.pk)
    members = count_segment(segment, as_of)
    remaining = template.remaining_stock
    return {
        "members": members, "remaining": remaining, "per_member_limit": template.per_member_limit,
        "at_most": members if remaining is None else min(members, remaining),
    }
