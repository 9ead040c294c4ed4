"""SOP campaigns: enrol members, run due steps, the guide's task outcomes and handover.

Enrolment is one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` per campaign over the members a
trigger selects, so that a re-run or two overlapping runs enrol nobody twice. Due steps run in
batches of enrolments; each batch is one transaction that writes its StepRun rows, tasks,
messages and coupons together, every one of them under a uniqueness key, so a batch that is
run again (a retried task, a worker that died half way) creates nothing a second time.
"""
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import (
    Case, CharField, Count, DateTimeField, Exists, F, Func, IntegerField, Lookup, Max, OuterRef, Q, Subquery, Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat, Length, Mod, NullIf, Substr
from django.utils.translation import gettext as _

from coupons.models import Coupon
from coupons.services import CouponError, issue_coupons
from lifecycle.models import MemberLifecycle, Stage, StageChange
from members.points import member_days_on
from members.models import ContactStatus, Event, EventType, Member, MemberTier, Order
from members.services import reassign_guide
from scrm.models import Staff
from tagging.models import MemberTag, TagSource
from tagging.services import apply_tags, segment_members

from .models import (
    RUN_TRIGGERS, Action, Campaign, Channel, Enrolment, GuideTask, Message, OutreachSettings, Schedule, Step,
    StepRun, Trigger,
)
from .surveys import step_script, survey_link

BATCH = 1000
# Enrolments per step batch: each batch is a handful of set-based statements in one transaction.
STEP_BATCH = 5000
ANALYZE_AFTER = 10_000
CONTROL = "control"
# A step held (contact limit) for longer than this after it fell due is skipped, not sent late.
HOLD_LIMIT = timedelta(days=14)
SCRIPT_VARIABLES = ("name", "coupon_code", "coupon", "favourite_category", "guide", "store", "survey_link")
# Steps that send their text through the step's channel.
SENDING_ACTIONS = (Action.MESSAGE, Action.SURVEY)
VARIABLE = re.compile(r"\{(\w+)\}")


class CampaignError(Exception):
    """A request the caller can fix; ``errors`` maps field names to messages."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def outreach_settings(tenant):
    found = OutreachSettings.objects.filter(tenant=tenant).first()
    return found or OutreachSettings(tenant=tenant)


# ---------------------------------------------------------------- scripts

def script_errors(text):
    unknown = sorted({name for name in VARIABLE.findall(text or "") if name not in SCRIPT_VARIABLES})
    if unknown:
        return [_("Unknown variables: %(names)s. Use %(known)s.") % {
            "names": ", ".join("{%s}" % n for n in unknown), "known": ", ".join("{%s}" % n for n in SCRIPT_VARIABLES),
        }]
    return []


def render_script(text, values):
    """Fill {name}-style variables; only plain names are replaced, so a script cannot reach attributes."""
    return VARIABLE.sub(lambda m: str(values.get(m.group(1), m.group(0)) or ""), text or "")


# ---------------------------------------------------------------- time

def local_day(tenant, moment):
    return moment.astimezone(tenant.zone).date()


def local_midnight(tenant, day):
    return datetime.combine(day, time(0), tzinfo=tenant.zone)


def in_quiet_hours(settings, tenant, as_of):
    now = as_of.astimezone(tenant.zone).time()
    start, end = settings.quiet_start, settings.quiet_end
    if start < end:
        return start <= now < end
    return now >= start or now < end


def end_of_quiet_hours(settings, tenant, as_of):
    local = as_of.astimezone(tenant.zone)
    morning = datetime.combine(local.date(), settings.quiet_end, tzinfo=tenant.zone)
    return morning if morning > local else morning + timedelta(days=1)


# ---------------------------------------------------------------- enrolment

def _quoted(model):
    return connection.ops.quote_name(model._meta.db_table)


def audience(campaign, members, as_of):
    """Narrow ``members`` to the campaign's audience: segment, stages, tags and stores."""
    if campaign.segment_id:
        members = segment_members(campaign.segment, as_of, members)
    if campaign.audience_stages:
        members = members.filter(lifecycle__stage__in=campaign.audience_stages)
    if campaign.audience_tags:
        members = members.filter(
            Exists(MemberTag.objects.filter(member_id=OuterRef("pk"), tag_id__in=campaign.audience_tags))
        )
    if campaign.audience_stores:
        members = members.filter(home_store_id__in=campaign.audience_stores)
    return members


def variant_arms(campaign):
    """[(key, weight)] in bucket order: the control first, then the variants; '' takes the rest."""
    arms = []
    if campaign.control_pct:
        arms.append((CONTROL, campaign.control_pct))
    arms += [(v["key"], int(v["weight"])) for v in campaign.variants]
    return arms


def _variant_expression(campaign):
    """A stable pseudo-random bucket 0-99 per (campaign, member): a multiplicative hash of the ids."""
    arms = variant_arms(campaign)
    if not arms:
        return None, Value("", output_field=CharField())
    bucket = Mod(Mod(F("pk") * 2654435761 + campaign.pk * 40503, 4294967291), 100)
    whens, upper = [], 0
    for key, weight in arms:
        upper += weight
        whens.append(When(Q(e_bucket__lt=upper), then=Value(key)))
    return bucket, Case(*whens, default=Value(""), output_field=CharField())


def bucket_of(campaign, member_id):
    return ((member_id * 2654435761 + campaign.pk * 40503) % 4294967291) % 100


def enrol_members(campaign, members, as_of, window=None):
    """Enrol the audience part of ``members`` (a Member queryset) in one INSERT … SELECT; returns
    how many were enrolled. A member is enrolled once per entry window: once ever, or again only
    after ``reentry_days``."""
    tenant = campaign.tenant
    if window is None:
        window = "once" if campaign.reentry_days is None else local_day(tenant, as_of).isoformat()
    members = audience(campaign, members, as_of)
    if campaign.reentry_days is not None:
        members = members.exclude(Exists(Enrolment.objects.filter(
            campaign_id=campaign.pk, member_id=OuterRef("pk"),
            enrolled_at__gt=as_of - timedelta(days=campaign.reentry_days),
        )))
    bucket, variant = _variant_expression(campaign)
    if bucket is not None:
        members = members.annotate(e_bucket=bucket)
    rows = members.order_by().annotate(
        e_tenant=Value(tenant.pk, output_field=IntegerField()),
        e_campaign=Value(campaign.pk, output_field=IntegerField()),
        e_member=F("pk"),
        e_window=Value(window, output_field=CharField()),
        e_variant=variant,
        e_status=Value(Enrolment.Status.ACTIVE, output_field=CharField()),
        e_reason=Value("", output_field=CharField()),
        e_at=Value(as_of, output_field=DateTimeField()),
        e_guide=F("owner_guide_id"),
        e_store=F("home_store_id"),
    ).values(
        "e_tenant", "e_campaign", "e_member", "e_window", "e_variant", "e_status", "e_reason", "e_at",
        "e_guide", "e_store",
    )
    sql, params = rows.query.sql_with_params()
    columns = ", ".join(connection.ops.quote_name(c) for c in (
        "tenant_id", "campaign_id", "member_id", "window", "variant", "status", "left_reason", "enrolled_at",
        "guide_id", "store_id",
    ))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_quoted(Enrolment)} ({columns}) {sql} ON CONFLICT DO NOTHING", params)
        enrolled = cursor.rowcount
    if enrolled >= ANALYZE_AFTER:
        _analyze(Enrolment)
    return enrolled


def _changes_for(campaign, run_id):
    changes = StageChange.objects.filter(run_id=run_id)
    if campaign.trigger == Trigger.STAGE_ENTERED:
        return changes.filter(to_stage=campaign.trigger_stage).exclude(from_stage=campaign.trigger_stage)
    if campaign.trigger == Trigger.CHURN_WARNING:
        return changes.filter(to_warning=True, from_warning=False)
    return changes.filter(from_stage=Stage.INTRODUCTION, to_stage__in=(Stage.GROWTH, Stage.MATURITY))


def enrol_from_run(tenant, run_id, as_of):
    """Enrol the members of a lifecycle run's stage changes in every active campaign they trigger.
    Returns {campaign id: enrolled}."""
    enrolled = {}
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE, trigger__in=RUN_TRIGGERS).select_related("tenant", "segment")
    for campaign in campaigns:
        members = Member.objects.filter(pk__in=_changes_for(campaign, run_id).values("member_id"))
        with transaction.atomic():
            enrolled[campaign.pk] = enrol_members(campaign, members, as_of)
    return enrolled


def _catch_up(tenant, today, days_ago):
    """[start, end) of the local days ``days_ago`` (and the six days before, should a day be missed)."""
    return local_midnight(tenant, today - timedelta(days=days_ago + 6)), local_midnight(tenant, today - timedelta(days=days_ago - 1))


def moment_members(campaign, as_of):
    """The members a key-moment or schedule trigger selects today, before the audience filters."""
    tenant = campaign.tenant
    today = local_day(tenant, as_of)
    members = Member.objects.all()
    trigger, days = campaign.trigger, campaign.trigger_days or 0
    if trigger == Trigger.BIRTHDAY_MONTH:
        return members.filter(birthday__month=today.month)
    if trigger == Trigger.BIRTHDAY:
        return members.filter(birthday__month=today.month, birthday__day=today.day)
    if trigger == Trigger.JOINED_NO_PURCHASE:
        start, end = _catch_up(tenant, today, days)
        return members.filter(joined_at__gte=start, joined_at__lt=end).exclude(
            Exists(Order.objects.filter(member_id=OuterRef("pk")).exclude(status=Order.Status.REFUNDED))
        )
    if trigger == Trigger.NO_PURCHASE:
        start, end = _catch_up(tenant, today, days)
        return members.filter(Exists(MemberLifecycle.objects.filter(
            member_id=OuterRef("pk"), last_order_at__gte=start, last_order_at__lt=end,
        )))
    if trigger == Trigger.COUPON_EXPIRING:
        return members.filter(Exists(Coupon.objects.filter(
            member_id=OuterRef("pk"), status__in=Coupon.USABLE, expires_at__gt=as_of,
            expires_at__lt=local_midnight(tenant, today + timedelta(days=days + 1)),
        )))
    if trigger == Trigger.TIER_EXPIRING:
        return members.filter(Exists(MemberTier.objects.filter(
            member_id=OuterRef("pk"), tier__isnull=False, expires_at__gt=as_of,
            expires_at__lt=local_midnight(tenant, today + timedelta(days=days + 1)),
        )))
    if trigger == Trigger.CONTACT_DELETED:
        return members.filter(
            contact_status=ContactStatus.DELETED_BY_CUSTOMER,
            contact_status_changed_at__gte=local_midnight(tenant, today - timedelta(days=6)),
        )
    return members


def schedule_due(campaign, today):
    if campaign.schedule == Schedule.ONCE:
        return campaign.last_scheduled_on is None
    if campaign.schedule == Schedule.WEEKLY:
        return today.weekday() == campaign.schedule_day
    if campaign.schedule == Schedule.MONTHLY:
        following = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
        last = (following - timedelta(days=1)).day
        return today.day == min(campaign.schedule_day or 1, last)
    if campaign.schedule == Schedule.MEMBER_DAY:
        return bool(member_days_on(campaign.tenant, today))
    return True


def enrol_daily(tenant, as_of):
    """Once a local day per campaign: enrol the members of key moments and of due schedules.
    The day is claimed with a conditional UPDATE, so a second call the same day enrols nobody."""
    today = local_day(tenant, as_of)
    enrolled = {}
    # A live-code join (campaigns.acquisition) or an answered survey (campaigns.surveys) enrols its
    # member at once; nothing to add daily.
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE).exclude(
        trigger__in=(*RUN_TRIGGERS, Trigger.LIVE_CODE_JOINED, Trigger.SURVEY_COMPLETED)
    )
    for campaign in campaigns.select_related("tenant", "segment"):
        if campaign.trigger == Trigger.SCHEDULE and not schedule_due(campaign, today):
            continue
        with transaction.atomic():
            claimed = Campaign.objects.filter(pk=campaign.pk).filter(
                Q(last_scheduled_on__isnull=True) | Q(last_scheduled_on__lt=today)
            ).update(last_scheduled_on=today)
            if not claimed:
                continue
            window = today.isoformat() if campaign.trigger == Trigger.SCHEDULE else None
            enrolled[campaign.pk] = enrol_members(campaign, moment_members(campaign, as_of), as_of, window)
    return enrolled


def leave_on_outcome(tenant, as_of):
    """Active enrolments of campaigns that end on a purchase or a reply leave once it happened."""
    left = 0
    bought = Exists(Order.objects.filter(
        member_id=OuterRef("member_id"), placed_at__gte=OuterRef("enrolled_at"), placed_at__lte=as_of,
    ).exclude(status=Order.Status.REFUNDED))
    replied = Exists(Event.objects.filter(
        member_id=OuterRef("member_id"), type=EventType.MESSAGE_REPLIED,
        occurred_at__gte=OuterRef("enrolled_at"), occurred_at__lte=as_of,
    )) | Exists(GuideTask.objects.filter(enrolment_id=OuterRef("pk"), status=GuideTask.Status.REPLIED))
    active = Enrolment.objects.filter(status=Enrolment.Status.ACTIVE, campaign__status=Campaign.Status.ACTIVE)
    for flag, condition, reason in (("exit_on_purchase", bought, "purchase"), ("exit_on_reply", replied, "reply")):
        left += active.filter(**{f"campaign__{flag}": True}).filter(condition).update(
            status=Enrolment.Status.LEFT, left_reason=reason, left_at=as_of
        )
    if left:
        GuideTask.objects.filter(
            status=GuideTask.Status.OPEN, enrolment__status=Enrolment.Status.LEFT,
        ).update(status=GuideTask.Status.SKIPPED, skip_reason=_("The member left the campaign."), done_at=as_of)
    return left


# ---------------------------------------------------------------- building campaigns

STEP_FIELDS = ("delay_days", "action", "variant", "promotional", "skip_if_bought", "script", "channel",
               "coupon_template", "tag", "survey", "due_hours")
# What the runs of a step depend on: once it ran for someone, these stay as they were.
RUN_BOUND_FIELDS = ("action", "delay_days", "variant")
STATUS_FROM = {
    Campaign.Status.ACTIVE: (Campaign.Status.DRAFT, Campaign.Status.PAUSED),
    Campaign.Status.PAUSED: (Campaign.Status.ACTIVE,),
    Campaign.Status.ENDED: (Campaign.Status.DRAFT, Campaign.Status.ACTIVE, Campaign.Status.PAUSED),
}


def _plain_variants(variants):
    return [{"key": v["key"], "weight": int(v["weight"]), "label": v.get("label", "")} for v in variants or []]


@transaction.atomic
def save_campaign(tenant, fields, steps=None, campaign=None, staff=None):
    """Create a campaign, or change one. ``steps`` (field dicts in order), when given, replaces the
    steps: one with an ``id`` keeps that step, one without adds one, a step left out is deleted;
    each is given whole (a field left out takes its default).

    Nothing that existing runs depend on changes: a step that ran for someone is not deleted and
    keeps its action, day and variant; the variants and control are fixed once members are
    enrolled; an ended campaign does not change. Raises CampaignError keyed by field path."""
    fields = dict(fields)
    if "variants" in fields:
        fields["variants"] = _plain_variants(fields["variants"])
    if campaign is None:
        campaign = Campaign(tenant=tenant, created_by=staff)
    else:
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == Campaign.Status.ENDED:
            raise CampaignError({"status": [_("An ended campaign cannot be changed.")]})
        changed = [
            name for name in ("variants", "control_pct") if name in fields and fields[name] != getattr(campaign, name)
        ]
        if changed and Enrolment.objects.filter(campaign_id=campaign.pk).exists():
            message = _("Members are enrolled: the experiment's split cannot change.")
            raise CampaignError({name: [message] for name in changed})
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save()
    if steps is not None:
        _replace_steps(campaign, steps)
    return campaign


def _replace_steps(campaign, steps):
    # Locking the steps makes a step batch that is writing runs for one of them finish first (or
    # wait), so a step is never deleted under a run being written.
    existing = {step.pk: step for step in Step.objects.select_for_update().filter(campaign_id=campaign.pk)}
    ran = set(StepRun.objects.filter(step_id__in=list(existing)).values_list("step_id", flat=True).distinct())
    defaults = {name: Step._meta.get_field(name).get_default() for name in STEP_FIELDS}
    errors, kept = {}, set()
    for index, data in enumerate(steps):
        pk = data.get("id")
        if pk is None:
            continue
        if pk not in existing or pk in kept:
            errors[f"steps[{index}].id"] = [
                _("There is no step %(id)s in this campaign, or it is listed twice.") % {"id": pk}
            ]
            continue
        kept.add(pk)
        if pk in ran:
            for name in RUN_BOUND_FIELDS:
                if data.get(name, defaults[name]) != getattr(existing[pk], name):
                    errors[f"steps[{index}].{name}"] = [_(
                        "This step already ran for members, so its action, day and variant stay; add a new step instead."
                    )]
    gone = sorted(set(existing) - kept)
    for pk in gone:
        if pk in ran:
            errors.setdefault("steps", []).append(
                _("Step %(id)s already ran for members and cannot be deleted; end the campaign instead.") % {"id": pk}
            )
    if errors:
        raise CampaignError(errors)
    Step.objects.filter(pk__in=gone).delete()
    for position, data in enumerate(steps):
        step = existing[data["id"]] if data.get("id") else Step(tenant=campaign.tenant, campaign=campaign)
        for name in STEP_FIELDS:
            setattr(step, name, data.get(name, defaults[name]))
        step.position = position
        step.save()


def change_status(campaign, status, as_of):
    """Activate (a draft or paused campaign with steps), pause (an active one) or end (for good).
    A conditional UPDATE, so two clicks at once change it once. Returns the campaign as stored."""
    with transaction.atomic():
        if status == Campaign.Status.ACTIVE and not Step.objects.filter(campaign_id=campaign.pk).exists():
            raise CampaignError({"steps": [_("Add a step before starting the campaign.")]})
        changed = Campaign.objects.filter(pk=campaign.pk, status__in=STATUS_FROM[status]).update(
            status=status, updated_at=as_of
        )
    campaign.refresh_from_db()
    if not changed and campaign.status != status:
        raise CampaignError({"status": [_("A campaign that is %(now)s cannot become %(new)s.") % {
            "now": campaign.get_status_display(), "new": Campaign.Status(status).label,
        }]})
    return campaign


# ---------------------------------------------------------------- steps

@dataclass
class StepResult:
    done: int = 0
    held: int = 0
    skipped: int = 0
    messages: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, other):
        self.done += other.done
        self.held += other.held
        self.skipped += other.skipped
        self.messages += other.messages
        self.reasons.update(other.reasons)

    def as_dict(self):
        return {"done": self.done, "held": self.held, "skipped": self.skipped, "messages": self.messages,
                "reasons": dict(self.reasons)}


def due_enrolments(step, as_of):
    """Active enrolments this step is due for that have no final StepRun and are not held past now."""
    due = Enrolment.objects.filter(
        campaign_id=step.campaign_id, status=Enrolment.Status.ACTIVE,
        enrolled_at__lte=as_of - timedelta(days=step.delay_days),
    )
    due = due.filter(variant=step.variant) if step.variant else due.exclude(variant=CONTROL)
    settled = StepRun.objects.filter(enrolment_id=OuterRef("pk"), step_id=step.pk).filter(
        Q(status__in=(StepRun.Status.DONE, StepRun.Status.SKIPPED)) | Q(next_at__gt=as_of)
    )
    return due.exclude(Exists(settled)).order_by("pk")


def run_due_steps(tenant, as_of, campaign_ids=None, batch_size=STEP_BATCH):
    """Run every due step of the active campaigns, batch by batch. Returns a StepResult; the
    messages it queued are delivered by the outbox (``delivery.deliver_due``)."""
    leave_on_outcome(tenant, as_of)
    settings = outreach_settings(tenant)
    total = StepResult()
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE)
    if campaign_ids is not None:
        campaigns = campaigns.filter(pk__in=campaign_ids)
    steps = Step.objects.filter(campaign__in=campaigns).select_related(
        "campaign", "coupon_template", "tag"
    ).order_by("campaign_id", "position", "pk")
    written = 0
    for step in steps:
        # Keyset pagination: each batch starts after the last, so settled rows are not read again.
        after = 0
        while True:
            batch = list(due_enrolments(step, as_of).filter(pk__gt=after).values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            total.add(run_step_batch(tenant, settings, step, batch, as_of))
            after = batch[-1]
            written += len(batch)
            # Once per call is enough: the planner only goes wrong while it believes the table empty.
            if written >= ANALYZE_AFTER > written - len(batch):
                _analyze(StepRun)
    return total


def _analyze(model):
    """Fresh planner statistics on PostgreSQL after many new rows, so that the due-step query's
    NOT EXISTS keeps probing the unique index instead of scanning a table it believes empty."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_quoted(model)}")


def _recipient(channel, member, guide):
    if channel == Channel.SMS:
        return member.mobile or ""
    if channel == Channel.EMAIL:
        return str(member.attributes.get("email", "")) if isinstance(member.attributes, dict) else ""
    if channel == Channel.WECOM:
        external = member.wecom_external_userid or (
            member.attributes.get("wecom_external_userid", "") if isinstance(member.attributes, dict) else ""
        )
        return str(external) if external and guide is not None and guide.wecom_userid else ""
    return member.external_id


def _touch_counts(settings, member_ids, as_of):
    since = as_of - timedelta(days=settings.per_days)
    return Counter(dict(
        StepRun.objects.filter(_among("member_id", member_ids), touched=True, run_at__gt=since, run_at__lte=as_of)
        .values("member_id").annotate(n=Count("pk")).values_list("member_id", "n")
    ))


class _AnyOf(Lookup):
    """``column = ANY(%s)`` with the ids as one array parameter: it probes an index like an IN
    list does, without building and sending a 5,000-item IN list."""

    lookup_name = "any_of"

    def get_prep_lookup(self):
        return [int(pk) for pk in self.rhs]

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", [*params, self.rhs]


def _among(column, ids):
    """The filter ``column`` in ``ids`` for a batch of ids."""
    if connection.vendor == "postgresql":
        return _AnyOf(F(column), list(ids))
    return Q(**{f"{column}__in": list(ids)})


class _Due(NamedTuple):
    """What a step batch needs to know about one enrolment, read in one query."""

    pk: int
    tenant_id: int
    member_id: int
    window: str
    enrolled_at: datetime
    guide_id: int | None
    recipient: str


def _recipient_expression(channel):
    """The member's address for ``channel`` in SQL, over enrolments ('' when there is none)."""
    if channel == Channel.SMS:
        return Coalesce(F("member__mobile"), Value(""))
    if channel == Channel.EMAIL:
        return Coalesce(KeyTextTransform("email", "member__attributes"), Value(""), output_field=CharField())
    if channel == Channel.WECOM:
        return Case(
            When(Q(member__owner_guide__wecom_userid__gt=""),
                 then=Coalesce(
                     NullIf(F("member__wecom_external_userid"), Value("")),
                     KeyTextTransform("wecom_external_userid", "member__attributes"), Value(""),
                     output_field=CharField())),
            default=Value(""), output_field=CharField(),
        )
    return F("member__external_id")


def _due_rows(step, enrolment_ids):
    rows = Enrolment.objects.filter(_among("pk", enrolment_ids), status=Enrolment.Status.ACTIVE).annotate(
        due_recipient=_recipient_expression(step.channel) if step.action in SENDING_ACTIONS else Value("")
    )
    return [_Due(*row) for row in rows.order_by("pk").values_list(
        "pk", "tenant_id", "member_id", "window", "enrolled_at", "member__owner_guide_id", "due_recipient"
    )]


def _insert_select(model, rows, values):
    """``INSERT INTO <model> … SELECT … ON CONFLICT DO NOTHING``: one row of ``model`` per row of the
    queryset ``rows``. ``values`` maps column names (attnames) to expressions over ``rows`` or plain
    values; columns not named take their field's default. Returns how many rows were inserted."""
    annotations, columns = {}, []
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key:
            continue
        value = values.get(model_field.attname, model_field.get_default())
        target = model_field.target_field if model_field.is_relation else model_field
        if value is None:
            value = Cast(Value(None), output_field=target)
        elif not hasattr(value, "resolve_expression"):
            value = Value(value, output_field=target)
        annotations[f"i_{model_field.attname}"] = value
        columns.append(connection.ops.quote_name(model_field.column))
    sql, params = rows.order_by().annotate(**annotations).values(*annotations).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_quoted(model)} ({', '.join(columns)}) {sql} ON CONFLICT DO NOTHING", params)
        return cursor.rowcount


class _Join(Func):
    """Flat ``a || b || c`` of parts that are never NULL: Django's Concat nests a COALESCE pair per
    part, deeper than SQLite's parser allows for a long script."""

    arg_joiner = " || "
    template = "(%(expressions)s)"
    output_field = CharField()


def _text(value):
    return Value(str(value), output_field=CharField())


def _script_expression(tenant, step):
    """The step's script with its variables filled in SQL, over enrolments: the same text as
    ``render_script`` with ``_values_for`` gives, for every member of a batch in one statement."""
    coupons = Coupon.objects.filter(issue_key=Concat(
        _text(f"campaign:{step.campaign_id}:step:{step.pk}:"), OuterRef("window"), _text(":"),
        Cast(OuterRef("member_id"), output_field=CharField()), output_field=CharField(),
    ))
    # coupons.models.format_code, in SQL: ABCDE-FGHJK.
    code = Subquery(coupons.annotate(code_length=Length("code")).annotate(display=Case(
        When(Q(code_length__gt=6), then=Concat(
            Substr("code", 1, F("code_length") / 2), _text("-"), Substr("code", F("code_length") / 2 + 1),
        )),
        default=F("code"), output_field=CharField(),
    )).values("display")[:1]) if step.coupon_template_id else None
    variables = {
        "name": Coalesce(NullIf(F("member__name"), _text("")), _text(_("customer"))),
        "coupon_code": Coalesce(code, _text("")) if code is not None else _text(""),
        "coupon": Case(When(Exists(coupons), then=_text(step.coupon_template.name)), default=_text(""))
        if step.coupon_template_id else _text(""),
        "favourite_category": Coalesce(
            NullIf(F("member__lifecycle__favourite_category"), _text("")), _text(_("our new arrivals"))
        ),
        "guide": Coalesce(F("member__owner_guide__name"), _text("")),
        "store": Coalesce(F("member__home_store__name"), _text("")),
    }
    parts, start = [], 0
    for match in VARIABLE.finditer(step.script or ""):
        if match.start() > start:
            parts.append(_text(step.script[start:match.start()]))
        parts.append(variables.get(match.group(1), _text(match.group(0))))
        start = match.end()
    if start < len(step.script or ""):
        parts.append(_text(step.script[start:]))
    if not parts:
        return _text("")
    return parts[0] if len(parts) == 1 else _Join(*parts)


def _insert_touches(tenant, step, enrolment_ids, as_of):
    """The step's guide tasks or outbox messages for these enrolments, in one INSERT … SELECT;
    the (enrolment, step) and idempotency-key constraints make a second run insert nothing."""
    rows = Enrolment.objects.filter(_among("pk", enrolment_ids))
    text = _script_expression(tenant, step)
    if step.action == Action.GUIDE_TASK:
        coupon = None
        if step.coupon_template_id:
            coupon = Subquery(Coupon.objects.filter(issue_key=Concat(
                _text(f"campaign:{step.campaign_id}:step:{step.pk}:"), OuterRef("window"), _text(":"),
                Cast(OuterRef("member_id"), output_field=CharField()), output_field=CharField(),
            )).values("pk")[:1])
        return _insert_select(GuideTask, rows, {
            "tenant_id": F("tenant_id"), "enrolment_id": F("pk"), "step_id": step.pk, "campaign_id": step.campaign_id,
            "member_id": F("member_id"), "guide_id": F("member__owner_guide_id"),
            "store_id": F("member__home_store_id"),
            "script": text, "coupon_id": coupon, "status": GuideTask.Status.OPEN, "created_at": as_of,
            "due_at": as_of + timedelta(hours=step.due_hours),
        })
    return _insert_select(Message, rows, {
        "tenant_id": F("tenant_id"), "channel": step.channel, "recipient": _recipient_expression(step.channel),
        "sender_ref": Coalesce(F("member__owner_guide__wecom_userid"), _text("")), "body": text,
        "status": Message.Status.QUEUED, "next_attempt_at": as_of,
        "idempotency_key": Concat(_text(f"step:{step.pk}:enrolment:"), Cast(F("pk"), output_field=CharField()),
                                  output_field=CharField()),
        "member_id": F("member_id"), "campaign_id": step.campaign_id, "step_id": step.pk, "created_at": as_of,
    })


@transaction.atomic
def run_step_batch(tenant, settings, step, enrolment_ids, as_of):
    """Run ``step`` for these enrolments: decide done / held / skipped for each, then write the
    StepRuns and the step's tasks, messages, coupons or tags, all under their uniqueness keys."""
    enrolments = _due_rows(step, enrolment_ids)
    existing, waiting = {}, set()
    runs = StepRun.objects.filter(_among("enrolment_id", enrolment_ids), step=step)
    for enrolment_id, status, next_at in runs.values_list("enrolment_id", "status", "next_at"):
        existing[enrolment_id] = status
        if status != StepRun.Status.HELD or (next_at is not None and next_at > as_of):
            waiting.add(enrolment_id)
    enrolments = [e for e in enrolments if e.pk not in waiting]
    member_ids = [e.member_id for e in enrolments]
    last_order = {}
    if step.skip_if_bought or step.promotional:
        last_order = dict(
            Order.objects.filter(_among("member_id", member_ids), placed_at__lte=as_of)
            .exclude(status=Order.Status.REFUNDED)
            .values("member_id").annotate(last=Max("placed_at")).values_list("member_id", "last")
        )
    delay = timedelta(days=step.delay_days)
    recent = as_of - timedelta(days=settings.dont_disturb_days)
    outcome = {}
    candidates = []
    for e in sorted(enrolments, key=lambda e: (e.enrolled_at, e.pk)):
        bought = last_order.get(e.member_id)
        if existing.get(e.pk) == StepRun.Status.HELD and e.enrolled_at + delay < as_of - HOLD_LIMIT:
            outcome[e.pk] = (StepRun.Status.SKIPPED, StepRun.Reason.HELD_TOO_LONG, None)
        elif step.skip_if_bought and bought is not None and bought >= e.enrolled_at:
            outcome[e.pk] = (StepRun.Status.SKIPPED, StepRun.Reason.BOUGHT_SINCE, None)
        elif step.promotional and bought is not None and bought > recent:
            outcome[e.pk] = (StepRun.Status.SKIPPED, StepRun.Reason.RECENT_BUYER, None)
        elif step.action == Action.GUIDE_TASK and e.guide_id is None:
            outcome[e.pk] = (StepRun.Status.SKIPPED, StepRun.Reason.NO_GUIDE, None)
        elif step.action in SENDING_ACTIONS and not e.recipient:
            outcome[e.pk] = (StepRun.Status.SKIPPED, StepRun.Reason.NO_RECIPIENT, None)
        else:
            candidates.append(e)
    if step.action in SENDING_ACTIONS and candidates and in_quiet_hours(settings, tenant, as_of):
        morning = end_of_quiet_hours(settings, tenant, as_of)
        for e in candidates:
            outcome[e.pk] = (StepRun.Status.HELD, StepRun.Reason.QUIET_HOURS, morning)
        candidates = []
    if step.touches and candidates:
        counts = _touch_counts(settings, [e.member_id for e in candidates], as_of)
        allowed = []
        for e in candidates:
            if counts[e.member_id] >= settings.max_touches:
                outcome[e.pk] = (StepRun.Status.HELD, StepRun.Reason.CONTACT_CAP, as_of + timedelta(days=1))
            else:
                counts[e.member_id] += 1
                allowed.append(e)
        candidates = allowed
    coupons = _issue_step_coupons(tenant, step, candidates, as_of) if step.coupon_template_id else {}
    go = []
    for e in candidates:
        if step.coupon_template_id and e.member_id not in coupons:
            outcome[e.pk] = (StepRun.Status.SKIPPED, StepRun.Reason.NO_COUPON, None)
        else:
            outcome[e.pk] = (StepRun.Status.DONE, StepRun.Reason.NONE, None)
            go.append(e)
    _perform(tenant, step, go, coupons, as_of)
    result = _record(step, enrolments, existing, outcome, as_of)
    if step.action in SENDING_ACTIONS:
        result.messages = len(go)
    return result


def _issue_step_coupons(tenant, step, enrolments, as_of):
    """Issue the step's coupon to each enrolment's member (keyed per campaign, step and entry window);
    returns {member id: coupon id} for those who hold one under that key."""
    by_window = defaultdict(list)
    for e in enrolments:
        by_window[e.window].append(e.member_id)
    keys = []
    for window, member_ids in by_window.items():
        prefix = f"campaign:{step.campaign_id}:step:{step.pk}:{window}"
        try:
            issue_coupons(
                tenant, step.coupon_template_id, member_ids, as_of=as_of, source=Coupon.Source.CAMPAIGN,
                source_ref=step.campaign.name[:120], campaign_id=step.campaign_id, key_prefix=prefix,
            )
        except CouponError:
            pass  # an inactive or ended template: the members get none and the step records why
        keys += [f"{prefix}:{m}" for m in member_ids]
    return dict(Coupon.objects.filter(issue_key__in=keys).values_list("member_id", "pk"))


def _values_for(member, coupon, lifecycle_categories):
    guide = member.owner_guide
    return {
        "name": member.name or _("customer"),
        "coupon_code": coupon.display_code if coupon else "",
        "coupon": coupon.template.name if coupon else "",
        "favourite_category": lifecycle_categories.get(member.pk) or _("our new arrivals"),
        "guide": guide.name if guide else "",
        "store": member.home_store.name if member.home_store_id else "",
    }


def _perform(tenant, step, enrolments, coupons, as_of):
    if not enrolments:
        return
    member_ids = [e.member_id for e in enrolments]
    if step.action in (Action.ADD_TAG, Action.REMOVE_TAG):
        members = Member.objects.filter(pk__in=member_ids)
        change = {"add": [step.tag_id]} if step.action == Action.ADD_TAG else {"remove": [step.tag_id]}
        apply_tags(tenant, members, source=TagSource.CAMPAIGN, as_of=as_of, **change)
        return
    if step.action == Action.COUPON:
        return
    if step.action in (Action.GUIDE_TASK, Action.MESSAGE) and not step.survey_id:
        _insert_touches(tenant, step, [e.pk for e in enrolments], as_of)
        return
    enrolments = list(
        Enrolment.objects.filter(pk__in=[e.pk for e in enrolments])
        .select_related("member", "member__home_store", "member__owner_guide").order_by("pk")
    )
    categories = dict(
        MemberLifecycle.objects.filter(member_id__in=member_ids).values_list("member_id", "favourite_category")
    )
    if coupons:
        found = {c.pk: c for c in Coupon.objects.filter(pk__in=list(coupons.values())).select_related("template")}
        coupons = {m: found[pk] for m, pk in coupons.items()}
    script = step_script(step) if step.action == Action.SURVEY else step.script

    def text(e):
        values = _values_for(e.member, coupons.get(e.member_id), categories)
        if step.survey_id:
            values["survey_link"] = survey_link(tenant.pk, step.survey_id, e.member_id, as_of)
        return render_script(script, values)

    if step.action == Action.GUIDE_TASK:
        GuideTask.objects.bulk_create([
            GuideTask(
                tenant=tenant, enrolment=e, step=step, campaign_id=step.campaign_id, member_id=e.member_id,
                guide_id=e.member.owner_guide_id, store_id=e.member.home_store_id,
                script=text(e),
                coupon=coupons.get(e.member_id), created_at=as_of, due_at=as_of + timedelta(hours=step.due_hours),
            )
            for e in enrolments
        ], ignore_conflicts=True, batch_size=BATCH)
        return
    messages = [
        Message(
            tenant=tenant, channel=step.channel, recipient=_recipient(step.channel, e.member, e.member.owner_guide),
            sender_ref=e.member.owner_guide.wecom_userid if e.member.owner_guide_id else "",
            body=text(e),
            idempotency_key=f"step:{step.pk}:enrolment:{e.pk}", member_id=e.member_id,
            campaign_id=step.campaign_id, step=step, created_at=as_of, next_attempt_at=as_of,
        )
        for e in enrolments
    ]
    Message.objects.bulk_create(messages, ignore_conflicts=True, batch_size=BATCH)


def _record(step, enrolments, existing, outcome, as_of):
    result = StepResult()
    new = defaultdict(list)
    updates = defaultdict(list)
    touched = []
    for e in enrolments:
        status, reason, next_at = outcome[e.pk]
        is_touch = status == StepRun.Status.DONE and step.touches
        if is_touch:
            touched.append(e.pk)
        setattr(result, status, getattr(result, status) + 1)
        if reason:
            result.reasons[reason] += 1
        (updates if e.pk in existing else new)[(status, reason, next_at, is_touch)].append(e.pk)
    due_at = F("enrolled_at")
    if step.delay_days:
        due_at = F("enrolled_at") + Value(timedelta(days=step.delay_days))
    for (status, reason, next_at, is_touch), ids in new.items():
        _insert_select(StepRun, Enrolment.objects.filter(_among("pk", ids)), {
            "tenant_id": F("tenant_id"), "enrolment_id": F("pk"), "step_id": step.pk, "campaign_id": step.campaign_id,
            "member_id": F("member_id"), "status": status, "reason": reason, "touched": is_touch,
            "due_at": due_at, "run_at": as_of, "next_at": next_at,
        })
    for (status, reason, next_at, is_touch), ids in updates.items():
        StepRun.objects.filter(step=step, enrolment_id__in=ids, status=StepRun.Status.HELD).update(
            status=status, reason=reason, next_at=next_at, touched=is_touch, run_at=as_of
        )
    if touched:
        Enrolment.objects.filter(_among("pk", touched), first_touch_at__isnull=True).update(first_touch_at=as_of)
    return result


# ---------------------------------------------------------------- the guide's tasks

OUTCOMES = (
    GuideTask.Status.SENT, GuideTask.Status.REPLIED, GuideTask.Status.BOUGHT, GuideTask.Status.UNREACHABLE,
    GuideTask.Status.SKIPPED,
)


def visible_tasks(staff):
    """Tasks a staff member may see: a guide their own, a store manager their stores' guides', others all."""
    tasks = GuideTask.objects.all()
    if staff.sees_all_members:
        return tasks
    if staff.role == Staff.Role.GUIDE:
        return tasks.filter(guide=staff)
    return tasks.filter(Q(store__in=staff.stores.all()) | Q(guide__stores__in=staff.stores.all())).distinct()


def record_outcome(task, outcome, as_of, reason=""):
    """Close an open task with the guide's outcome; a second tap changes nothing. Returns whether it closed."""
    if outcome not in OUTCOMES:
        raise CampaignError({"outcome": [_("Not a task outcome: %(value)s.") % {"value": outcome}]})
    reason = (reason or "").strip()
    if outcome == GuideTask.Status.SKIPPED and not reason:
        raise CampaignError({"reason": [_("Say why the task is skipped.")]})
    changed = GuideTask.objects.filter(pk=task.pk, status=GuideTask.Status.OPEN).update(
        status=outcome, skip_reason=reason[:200], done_at=as_of, snoozed_until=None
    )
    task.refresh_from_db()
    return bool(changed)


def snooze(task, until, as_of):
    if until <= as_of:
        raise CampaignError({"until": [_("Snooze to a time in the future.")]})
    return bool(GuideTask.objects.filter(pk=task.pk, status=GuideTask.Status.OPEN).update(snoozed_until=until))


def snooze_choices(tenant, as_of):
    """Two hours from now, and tomorrow at 10:00 tenant time."""
    local = as_of.astimezone(tenant.zone)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(10), tzinfo=tenant.zone)
    return {"2h": as_of + timedelta(hours=2), "tomorrow": tomorrow}


@transaction.atomic
def hand_over(tenant, leaving, to_guide, as_of):
    """离职继承: the leaving guide's members and open tasks go to another guide in one step.
    Returns {"members": n, "tasks": n}."""
    if leaving.pk == to_guide.pk:
        raise CampaignError({"to_guide": [_("Choose another guide.")]})
    if to_guide.role != Staff.Role.GUIDE or not to_guide.active:
        raise CampaignError({"to_guide": [_("Hand over to an active guide.")]})
    members = reassign_guide(tenant, Member.objects.filter(owner_guide=leaving), to_guide, as_of=as_of)
    tasks = GuideTask.objects.filter(guide=leaving, status=GuideTask.Status.OPEN).update(guide=to_guide)
    Enrolment.objects.filter(guide=leaving, status=Enrolment.Status.ACTIVE).update(guide=to_guide)
    return {"members": members, "tasks": tasks}
