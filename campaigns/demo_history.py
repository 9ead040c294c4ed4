"""The demo brand's last month of campaign work, replayed through the product's own services.

``replay_month(tenant, as_of)`` walks the local days of the last ``HISTORY_DAYS`` in order, as the
brand's scheduler would have: each morning it enrols the stage changes of that night's lifecycle
run and the day's key moments, runs the steps due and delivers the outbox; between two mornings
the brand's guides and members act, decided by a seeded random draw per task, message and coupon:
guides close most of their tasks with an outcome (the guide page's own ``record_outcome``), a few
members reply to a message, and members who hold a campaign coupon and place one of their real
orders while it is valid mostly use it (``redeem_coupon`` with that order, at the order's time).

Every draw is keyed by what it is about (member number, campaign, step, moment), never by the
order of the walk, so the same seed gives the same month, and a second replay finds each task
closed, each message answered and each coupon redeemed already: nothing is added twice.
"""
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db import transaction

from coupons.models import Coupon
from coupons.services import CouponError, claim_coupon, expire_coupons, redeem_coupon
from lifecycle.models import LifecycleRun
from members.models import Event, EventType, Order
from scrm.models import Staff, Store

from . import delivery, services
from .models import GuideTask, Message

HISTORY_DAYS = 30
DEFAULT_SEED = 1
# When the day's steps run: the guides' morning, outside the default quiet hours.
MORNING = time(9, 30)
WORKDAY = (time(9, 0), time(21, 30))
# Orders are fetched per this many members.
CHUNK = 500
MAX_DELIVERY_BATCHES = 1000

# What becomes of a guide task: (outcome, weight). "open" is a task the guide never gets to.
TASK_OUTCOMES = (
    (GuideTask.Status.SENT, 48), (GuideTask.Status.REPLIED, 26), (GuideTask.Status.UNREACHABLE, 13),
    (GuideTask.Status.SKIPPED, 6), ("open", 4),
)
# How long after it was given a guide closes a task: (share, shortest, longest). Most the same day,
# some after the deadline, a few only when the backlog is cleared days later.
TASK_DELAYS = (
    (0.68, timedelta(minutes=10), timedelta(hours=9)),
    (0.22, timedelta(hours=24), timedelta(hours=60)),
    (0.10, timedelta(days=3), timedelta(days=8)),
)
SKIP_REASONS = ("顾客说最近不需要", "本周已在门店见过面", "顾客在外地，回来再联系", "顾客要求不再推送")
# A guide who sees the member buy soon after the task records it as bought.
BOUGHT_WITHIN = timedelta(days=5)
BOUGHT_SHARE = 0.7
MESSAGE_REPLY_SHARE = 0.07
CLAIM_SHARE = 0.45
REDEEM_SHARE = 0.75


@dataclass
class ReplayResult:
    days: int = 0
    enrolled: int = 0
    steps: services.StepResult = field(default_factory=services.StepResult)
    delivered: dict = field(default_factory=dict)
    outcomes: int = 0
    replies: int = 0
    redeemed: int = 0

    def as_dict(self):
        return {
            "days": self.days, "enrolled": self.enrolled, "steps": self.steps.as_dict(), "delivered": self.delivered,
            "outcomes": self.outcomes, "replies": self.replies, "redeemed": self.redeemed,
        }


def _draw(seed, *key):
    """A random source for one decision: the same key and seed always draw the same numbers."""
    return random.Random(":".join(str(part) for part in (seed, *key)))


def _mornings(tenant, as_of, days=HISTORY_DAYS):
    """The moments the month is replayed at: each local morning of the last ``days`` days before
    ``as_of``, then ``as_of`` itself."""
    today = services.local_day(tenant, as_of)
    moments = []
    for back in range(days - 1, -1, -1):
        moment = datetime.combine(today - timedelta(days=back), MORNING, tzinfo=tenant.zone)
        if moment < as_of:
            moments.append(moment)
    return [*moments, as_of]


def _delay(draw):
    """How long a guide takes over a task (see TASK_DELAYS)."""
    pick = draw.random()
    for share, shortest, longest in TASK_DELAYS:
        if pick < share:
            break
        pick -= share
    return shortest + (longest - shortest) * draw.random()


def _working_hours(tenant, moment, draw):
    """``moment``, moved to the next opening of the guides' working day when it falls outside it."""
    local = moment.astimezone(tenant.zone)
    start, end = WORKDAY
    if local.time() < start:
        return local.replace(hour=start.hour, minute=draw.randrange(60), second=0, microsecond=0)
    if local.time() >= end:
        morning = local.replace(hour=start.hour, minute=draw.randrange(60), second=0, microsecond=0)
        return morning + timedelta(days=1)
    return local


class _Replay:
    def __init__(self, tenant, as_of, seed):
        self.tenant, self.as_of, self.seed = tenant, as_of, seed
        self.result = ReplayResult()
        self.pending = []  # (when, sequence, action, arguments), applied once their moment has come
        self.used_orders = set()
        self.stores = {s.pk: s for s in Store.objects.all()}
        self.staff = {s.pk: s for s in Staff.objects.all()}

    def later(self, when, action, *arguments):
        """Do ``action`` ("close", "reply", "claim" or "redeem") at ``when``, unless that is after as_of."""
        if when <= self.as_of:
            self.pending.append((when, len(self.pending), action, arguments))

    # ------------------------------------------------------------ the scheduler's morning

    def morning(self, moment, runs):
        tenant = self.tenant
        expire_coupons(tenant, as_of=moment)
        for run in runs:
            self.result.enrolled += sum(services.enrol_from_run(tenant, run.pk, run.as_of).values())
        self.result.enrolled += sum(services.enrol_daily(tenant, moment).values())
        self.result.steps.add(services.run_due_steps(tenant, moment))
        # deliver_due sends a bounded batch per call; a failed message waits for its backoff.
        for _batch in range(MAX_DELIVERY_BATCHES):
            sent = delivery.deliver_due(tenant, moment)
            for status, n in sent.items():
                self.result.delivered[status] = self.result.delivered.get(status, 0) + n
            if not sent:
                break

    # ------------------------------------------------------------ what people do next

    def plan(self, since, until):
        """Decide what the guides and members do about the tasks, messages and coupons given in (since, until]."""
        self._plan_tasks(since, until)
        self._plan_replies(since, until)
        self._plan_coupons(since, until)

    def _orders_after(self, member_ids, start, end):
        """{member id: [(placed_at, external id, amount, store id, guide id)]} of their orders in
        [start, end), oldest first, refunded ones left out."""
        found = {}
        member_ids = sorted(set(member_ids))
        for first in range(0, len(member_ids), CHUNK):
            rows = (
                Order.objects.filter(
                    member_id__in=member_ids[first:first + CHUNK], placed_at__gte=start, placed_at__lt=end,
                )
                .exclude(status=Order.Status.REFUNDED).order_by("placed_at", "pk")
                .values_list("member_id", "placed_at", "external_id", "total", "store_id", "guide_id")
            )
            for member_id, *order in rows:
                found.setdefault(member_id, []).append(tuple(order))
        return found

    def _plan_tasks(self, since, until):
        tasks = list(
            GuideTask.objects.filter(created_at__gt=since, created_at__lte=until)
            .order_by("pk").values_list(
                "pk", "member_id", "member__external_id", "campaign__name", "step__position", "enrolment__window",
                "created_at",
            )
        )
        if not tasks:
            return
        orders = self._orders_after([t[1] for t in tasks], since, until + BOUGHT_WITHIN)
        for pk, member_id, external_id, campaign, position, window, created_at in tasks:
            draw = _draw(self.seed, "task", external_id, campaign, position, window)
            bought = next(
                (o for o in orders.get(member_id, ()) if created_at <= o[0] < created_at + BOUGHT_WITHIN), None
            )
            if bought is not None and draw.random() < BOUGHT_SHARE:
                when = _working_hours(self.tenant, bought[0] + timedelta(minutes=draw.randint(20, 360)), draw)
                self.later(when, "close", pk, GuideTask.Status.BOUGHT, "")
                continue
            outcome = draw.choices([o for o, _w in TASK_OUTCOMES], [w for _o, w in TASK_OUTCOMES])[0]
            if outcome == "open":
                continue
            delay = _delay(draw)
            reason = draw.choice(SKIP_REASONS) if outcome == GuideTask.Status.SKIPPED else ""
            self.later(_working_hours(self.tenant, created_at + delay, draw), "close", pk, outcome, reason)

    def _plan_replies(self, since, until):
        messages = (
            Message.objects.filter(created_at__gt=since, created_at__lte=until, status=Message.Status.SENT,
                                   campaign__isnull=False, member__isnull=False)
            .order_by("pk").values_list(
                "member_id", "member__external_id", "campaign__name", "step__position", "created_at", "sent_at",
                "idempotency_key",
            )
        )
        for member_id, external_id, campaign, position, created_at, sent_at, key in messages:
            draw = _draw(self.seed, "reply", external_id, campaign, position, created_at.isoformat())
            if draw.random() >= MESSAGE_REPLY_SHARE:
                continue
            when = sent_at + timedelta(minutes=draw.randint(3, 8 * 60))
            self.later(when, "reply", member_id, f"demo-reply:{key}"[:64], campaign)

    def _plan_coupons(self, since, until):
        coupons = list(
            Coupon.objects.filter(issued_at__gt=since, issued_at__lte=until, source=Coupon.Source.CAMPAIGN)
            .order_by("issued_at", "pk").values_list(
                "code", "member_id", "member__external_id", "template__name", "template__threshold", "issued_at",
                "expires_at",
            )
        )
        if not coupons:
            return
        longest = max(c[6] for c in coupons)
        orders = self._orders_after([c[1] for c in coupons], since, min(longest, self.as_of + timedelta(seconds=1)))
        for code, member_id, external_id, template, threshold, issued_at, expires_at in coupons:
            draw = _draw(self.seed, "coupon", external_id, template, issued_at.isoformat())
            used = next((
                o for o in orders.get(member_id, ())
                if issued_at < o[0] < expires_at and o[2] >= threshold and o[1] not in self.used_orders
            ), None)
            if used is not None and draw.random() < REDEEM_SHARE:
                self.used_orders.add(used[1])
                self.later(used[0], "redeem", code, *used[1:])
                claim_by = used[0]
            else:
                claim_by = expires_at
            if draw.random() < CLAIM_SHARE:
                claimed = issued_at + timedelta(minutes=draw.randint(5, 30 * 60))
                if claimed < claim_by:
                    self.later(claimed, "claim", code)

    # ------------------------------------------------------------ acting, at the moment decided

    def act_until(self, moment):
        due = sorted(p for p in self.pending if p[0] <= moment)
        self.pending = [p for p in self.pending if p[0] > moment]
        handlers = {"close": self._close, "claim": self._claim, "redeem": self._redeem}
        replies = []
        for when, _sequence, action, arguments in due:
            if action == "reply":
                replies.append((when, *arguments))
            else:
                handlers[action](when, *arguments)
        if replies:
            self._record_replies(replies)

    def _close(self, when, task_id, outcome, reason):
        # The member may have left the campaign (a purchase) and the task closed itself meanwhile.
        if services.record_outcome(GuideTask(pk=task_id), outcome, when, reason):
            self.result.outcomes += 1

    def _record_replies(self, replies):
        events = [
            Event(tenant=self.tenant, member_id=member_id, type=EventType.MESSAGE_REPLIED, occurred_at=when,
                  external_id=external_id, properties={"campaign": campaign})
            for when, member_id, external_id, campaign in replies
        ]
        known = set(
            Event.objects.filter(external_id__in=[e.external_id for e in events]).values_list("external_id", flat=True)
        )
        fresh = [e for e in events if e.external_id not in known]
        Event.objects.bulk_create(fresh, ignore_conflicts=True)
        self.result.replies += len(fresh)

    def _claim(self, when, code):
        try:
            claim_coupon(self.tenant, code, as_of=when)
        except CouponError:
            pass  # expired or voided meanwhile

    def _redeem(self, when, code, order_external_id, amount, store_id, guide_id):
        try:
            redemption = redeem_coupon(
                self.tenant, code, order_external_id=order_external_id, amount=amount, as_of=when,
                store=self.stores.get(store_id), guide=self.staff.get(guide_id),
            )
        except CouponError:
            return  # voided or expired meanwhile
        if not redemption.replayed:
            self.result.redeemed += 1


def replay_month(tenant, as_of, seed=DEFAULT_SEED, days=HISTORY_DAYS):
    """Replay the campaigns of the last ``days`` days before ``as_of`` over the stored lifecycle
    runs and orders (inside ``tenant``'s tenant_context). Returns a ReplayResult."""
    replay = _Replay(tenant, as_of, seed)
    moments = _mornings(tenant, as_of, days)
    runs = list(
        LifecycleRun.objects.filter(
            kind__in=(LifecycleRun.Kind.NIGHTLY, LifecycleRun.Kind.FULL), status=LifecycleRun.Status.DONE,
            as_of__gt=moments[0] - timedelta(days=1), as_of__lte=as_of,
        ).order_by("as_of", "pk")
    )
    console = logging.getLogger(delivery.__name__)
    level = console.level
    # A month of console messages would fill the terminal of `make run`.
    console.setLevel(logging.WARNING)
    try:
        since = moments[0] - timedelta(days=1)
        for moment in moments:
            # A day is one transaction: what people did since yesterday morning, then this morning's run.
            with transaction.atomic():
                replay.act_until(moment)
                replay.morning(moment, [run for run in runs if since < run.as_of <= moment])
                replay.plan(since, moment)
            since = moment
        # Anything given between two mornings (not by the walk) may have been acted on before as_of.
        with transaction.atomic():
            replay.act_until(as_of)
    finally:
        console.setLevel(level)
    replay.result.days = len(moments)
    return replay.result
