"""Lifecycle operations: scoring runs (full, nightly, incremental), backfill, the nightly
schedule, and the versioned stage rules. The API, the dashboard, the tasks and the commands all
call these functions."""
import logging
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.models import Tenant

from . import scoring
from .signals import run_finished
from .models import (
    RULE_DEFAULTS, RULE_FIELDS, DailyStageSnapshot, LifecycleRun, MemberLifecycle, StageChange, StageRules,
    StageRulesVersion,
)

log = logging.getLogger(__name__)

NIGHTLY_AT = time(2, 0)
INCREMENTAL_BATCH = 5000


# ---------------------------------------------------------------- rules

def current_rules(tenant):
    """The brand's stage rules; the defaults (version 0) until they are first changed."""
    rules = StageRules.objects.unscoped().filter(tenant=tenant).first()
    if rules is None:
        rules = StageRules(tenant=tenant, **RULE_DEFAULTS)
    return rules


def rules_of_version(tenant, version):
    if not version:
        return dict(RULE_DEFAULTS)
    row = StageRulesVersion.objects.unscoped().filter(tenant=tenant, version=version).first()
    return dict(row.values) if row else current_rules(tenant).values()


def validate_rules(values):
    """Errors by field for a set of rule values that cannot work together."""
    errors = {}
    for field in RULE_FIELDS:
        value = values.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors[field] = [_("Must be a whole number of at least 1.")]
    if errors:
        return errors
    if values["aov_drop_pct"] > 100:
        errors["aov_drop_pct"] = [_("Must be at most 100.")]
    if values["mature_min_orders"] < 2:
        errors["mature_min_orders"] = [_("Must be at least 2: one order makes a member growth.")]
    if values["churn_after_days"] <= values["dormant_after_days"]:
        errors["churn_after_days"] = [_("Must be more than dormant_after_days.")]
    if values["warning_days"] >= values["dormant_after_days"]:
        errors["warning_days"] = [_("Must be less than dormant_after_days, or the warning would never show.")]
    return errors


@transaction.atomic
def update_rules(tenant, values, changed_by=None, label="", expected_version=None, now=None):
    """Save new rule values as the next version. Returns (rules, changed). ``expected_version``
    guards against overwriting a change made in between (raises RulesConflict)."""
    now = now or timezone.now()
    rules = StageRules.objects.unscoped().select_for_update().filter(tenant=tenant).first()
    if rules is None:
        try:
            with transaction.atomic():
                StageRules.objects.unscoped().create(tenant=tenant, **RULE_DEFAULTS)
        except IntegrityError:
            pass
        rules = StageRules.objects.unscoped().select_for_update().get(tenant=tenant)
    if expected_version is not None and expected_version != rules.version:
        raise RulesConflict(rules.version)
    previous = rules.values()
    new = {**previous, **{k: v for k, v in values.items() if k in RULE_FIELDS}}
    errors = validate_rules(new)
    if errors:
        raise ValidationError(errors)
    if new == previous:
        return rules, False
    for field, value in new.items():
        setattr(rules, field, value)
    rules.version += 1
    rules.updated_at = now
    rules.updated_by = changed_by
    rules.save()
    StageRulesVersion.objects.unscoped().create(
        tenant=tenant, version=rules.version, values=new, previous=previous, changed_by=changed_by,
        changed_by_label=label or (changed_by.name if changed_by else ""), changed_at=now,
    )
    return rules, True


class RulesConflict(Exception):
    def __init__(self, current_version):
        super().__init__(current_version)
        self.current_version = current_version


def dry_run(tenant, values):
    """How many members would move from which stage to which under ``values`` (not saved),
    judged on the metrics of the last run. Returns {"as_of", "moves": [...], "warnings_on", ...}."""
    last = last_scheduled_run(tenant) or latest_run(tenant)
    if last is None:
        return {"as_of": None, "moves": [], "moved": 0, "warnings_raised": 0, "warnings_cleared": 0, "members": 0}
    rows = scoring.dry_run_counts(tenant.pk, scoring.Rules.of(values), last.as_of)
    moves, raised, cleared, members = {}, 0, 0, 0
    for stage, new_stage, warning, new_warning, n in rows:
        members += n
        if stage != new_stage:
            moves[(stage, new_stage)] = moves.get((stage, new_stage), 0) + n
        if not warning and new_warning:
            raised += n
        if warning and not new_warning:
            cleared += n
    ordered = sorted(({"from": a, "to": b, "count": n} for (a, b), n in moves.items()), key=lambda m: -m["count"])
    return {
        "as_of": last.as_of, "moves": ordered, "moved": sum(moves.values()),
        "warnings_raised": raised, "warnings_cleared": cleared, "members": members,
    }


# ---------------------------------------------------------------- runs

def latest_run(tenant):
    return LifecycleRun.objects.unscoped().filter(tenant=tenant, status=LifecycleRun.Status.DONE).order_by("-as_of", "-id").first()


def last_scheduled_run(tenant):
    """The last finished full or nightly run: the base a change-driven run starts from."""
    return (
        LifecycleRun.objects.unscoped()
        .filter(tenant=tenant, status=LifecycleRun.Status.DONE, kind__in=[LifecycleRun.Kind.FULL, LifecycleRun.Kind.NIGHTLY])
        .order_by("-as_of", "-id")
        .first()
    )


def _new_run(tenant, kind, as_of, scheduled_for=None):
    return LifecycleRun.objects.unscoped().create(tenant=tenant, kind=kind, as_of=as_of, scheduled_for=scheduled_for)


def score_full(tenant, as_of, complete=False):
    """Re-score every member as of ``as_of``: every metric that decides a stage or the warning is
    recomputed from all orders. The favourite category and the last interaction, which read every
    order line and event, are recomputed only for members whose lines or events changed since the
    last full or nightly run, unless ``complete`` (or there is no such run)."""
    return execute_run(_new_run(tenant, LifecycleRun.Kind.FULL, as_of), complete=complete)


def score_nightly(tenant, as_of, notify=True):
    """The change-driven run: re-score only the members whose stage can have moved since the last
    full or nightly run. Runs as a full run when there is none, or the rules changed since."""
    return execute_run(_new_run(tenant, LifecycleRun.Kind.NIGHTLY, as_of), notify=notify)


def score_members(tenant, member_ids, as_of):
    """Incremental run for members touched by new orders, refunds, events or profile changes."""
    member_ids = [int(pk) for pk in member_ids]
    if not member_ids:
        return None
    return execute_run(_new_run(tenant, LifecycleRun.Kind.INCREMENTAL, as_of), member_ids=member_ids)


def execute_run(run, member_ids=None, complete=False, notify=True):
    """Do the work of a queued run and record its outcome on the run row (also on failure).
    ``notify``: tell the apps that react to runs (automatic tags, campaign triggers) once it commits."""
    tenant = run.tenant
    rules_row = current_rules(tenant)
    rules = scoring.Rules.of(rules_row.values())
    run.status = LifecycleRun.Status.RUNNING
    run.started_at = timezone.now()
    run.rules_version = rules_row.version
    run.max_member_id = scoring.max_member_id(tenant.pk)
    run.save(update_fields=["status", "started_at", "rules_version", "max_member_id"])
    everyone, scored = False, None
    try:
        if run.kind == LifecycleRun.Kind.INCREMENTAL:
            scoring.queue_members(tenant.pk, run.pk, member_ids)
            scored = scoring.score_pending(tenant.pk, run.pk, run.as_of, rules)
        else:
            previous = last_scheduled_run(tenant)
            everyone = run.kind == LifecycleRun.Kind.FULL or (
                previous is None or previous.rules_version != run.rules_version or previous.as_of >= run.as_of
            )
            if everyone:
                run.fell_back_to_full = run.kind == LifecycleRun.Kind.NIGHTLY
                reuse = not complete and previous is not None and previous.as_of <= run.as_of
                if reuse:
                    scoring.queue_changed_members(tenant.pk, run.pk, run.as_of, rules, previous)
                scoring.score_all(tenant.pk, run.pk, run.as_of, rules, reuse_profile=reuse)
            else:
                scoring.queue_changed_members(tenant.pk, run.pk, run.as_of, rules, previous)
                scored = scoring.score_pending(tenant.pk, run.pk, run.as_of, rules)
            scoring.write_snapshot(tenant.pk, local_day(tenant, run.as_of))
        if scored is None:
            scored = scoring.count_scored(tenant.pk, run.pk, run.as_of, everyone)
        run.members_scored = scored
        _summarise(run)
        run.status = LifecycleRun.Status.DONE
    except Exception as exc:
        run.status = LifecycleRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        log.exception("Lifecycle run %s of tenant %s failed", run.pk, tenant.pk)
        raise
    finally:
        scoring.clear_pending(tenant.pk, run.pk)
        run.finished_at = timezone.now()
        run.save()
    if not notify:
        return run
    ids = sorted(set(member_ids)) if run.kind == LifecycleRun.Kind.INCREMENTAL else None
    transaction.on_commit(
        lambda: run_finished.send(sender=LifecycleRun, tenant_id=tenant.pk, run_id=run.pk, member_ids=ids)
    )
    return run


def _summarise(run):
    rows = (
        StageChange.objects.unscoped().filter(tenant_id=run.tenant_id, run_id=run.pk)
        .values_list("from_stage", "to_stage", "from_warning", "to_warning")
    )
    changes, raised, cleared, total = {}, 0, 0, 0
    for from_stage, to_stage, from_warning, to_warning, n in rows.annotate(n=Count("pk")).order_by():
        total += n
        if from_stage != to_stage:
            key = f"{from_stage or 'new'}→{to_stage}"
            changes[key] = changes.get(key, 0) + n
        if to_warning and not from_warning:
            raised += n
        if from_warning and not to_warning:
            cleared += n
    run.changes_total, run.changes, run.warnings_raised, run.warnings_cleared = total, changes, raised, cleared


def local_day(tenant, moment):
    return moment.astimezone(tenant.zone).date()


def reporting_day(tenant, now):
    """The local day reports end on by default: the day of the last run (what the stages are as of),
    or today before any run."""
    last = latest_run(tenant)
    return local_day(tenant, last.as_of if last else now)


def local_moment(tenant, day, at=NIGHTLY_AT):
    return datetime.combine(day, at, tzinfo=tenant.zone)


def backfill(tenant, start, end, at=NIGHTLY_AT, progress=None, announce=True):
    """Rebuild the brand's lifecycle history: forget the stored state, then run the nightly run
    for every local day from ``start`` to ``end`` (dates, inclusive) at ``at`` o'clock, in order.
    The first day is a full run; every later day is change-driven, as the nightly schedule is.

    Only the last run is announced to the apps that react to runs (none with ``announce`` false):
    the automatic tags follow the rebuilt state once, and campaigns are not triggered by stage
    changes of days long past."""
    if end < start:
        raise ValueError(_("The end date is before the start date."))
    with transaction.atomic():
        StageChange.objects.unscoped().filter(tenant=tenant).delete()
        DailyStageSnapshot.objects.unscoped().filter(tenant=tenant).delete()
        MemberLifecycle.objects.unscoped().filter(tenant=tenant).delete()
        LifecycleRun.objects.unscoped().filter(tenant=tenant).exclude(status=LifecycleRun.Status.RUNNING).delete()
    runs = []
    day = start
    while day <= end:
        runs.append(score_nightly(tenant, local_moment(tenant, day, at), notify=announce and day == end))
        if progress:
            progress(day, runs[-1])
        day += timedelta(days=1)
    return runs


# ---------------------------------------------------------------- the nightly schedule

def claim_due_nightly_runs(now):
    """Claim tonight's run of every brand whose local time has passed 02:00 and that has no
    scheduled run for its local day yet. The claim is a conditional insert (one scheduled run per
    brand and local day), so two dispatchers never start the same night twice. Returns the
    claimed runs; on the configured weekday the run is a full run, as a weekly check."""
    full_weekday = getattr(settings, "LIFECYCLE_FULL_RUN_WEEKDAY", 6)
    claimed = []
    for tenant in Tenant.objects.all().order_by("pk"):
        local = now.astimezone(tenant.zone)
        if local.time() < NIGHTLY_AT:
            continue
        day = local.date()
        if LifecycleRun.objects.unscoped().filter(tenant=tenant, scheduled_for=day).exists():
            continue
        kind = LifecycleRun.Kind.FULL if day.weekday() == full_weekday else LifecycleRun.Kind.NIGHTLY
        try:
            with transaction.atomic():
                claimed.append(_new_run(tenant, kind, now, scheduled_for=day))
        except IntegrityError:
            continue
    return claimed
