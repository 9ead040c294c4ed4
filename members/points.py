"""Points (积分), tiers (会员等级) and member days (会员日).

Every points write locks the members' ``PointsAccount`` rows first (in member-id order, so two
writers never wait on each other in a circle), then reads, then appends ledger entries and moves
the balances in the same transaction: the balance is always the sum of the ledger, and a spend
that would overdraw is refused however many run at once. The first statement of each such
transaction is a write, so SQLite takes its write lock before reading anything.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    Member, MemberDay, MemberTier, Order, PointsAccount, PointsEntry, PointsRules, Tier, TierChange, TierSettings,
)
from .signals import activity_recorded

CHUNK = 1000
Kind = PointsEntry.Kind
EARNING = (Kind.ORDER, Kind.REFUND, Kind.SIGN_IN, Kind.ACTIVITY)


class PointsError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def rules_for(tenant):
    return PointsRules.objects.filter(tenant=tenant).first() or PointsRules(tenant=tenant)


def tier_settings_for(tenant):
    return TierSettings.objects.filter(tenant=tenant).first() or TierSettings(tenant=tenant)


# ---------------------------------------------------------------- the ledger

def _lock_accounts(tenant, member_ids):
    """Create missing accounts, then lock all of them in member-id order. Returns {member_id: account}."""
    ids = sorted(set(member_ids))
    PointsAccount.objects.bulk_create(
        [PointsAccount(tenant=tenant, member_id=pk) for pk in ids], ignore_conflicts=True, batch_size=CHUNK
    )
    accounts = PointsAccount.objects.select_for_update().filter(tenant=tenant, member_id__in=ids).order_by("member_id")
    return {account.member_id: account for account in accounts}


def _append(tenant, accounts, entries):
    """Append ``entries`` (unsaved PointsEntry) in order and move the locked accounts' balances."""
    if not entries:
        return []
    for entry in entries:
        account = accounts[entry.member_id]
        account.balance += entry.points
        entry.tenant = tenant
        entry.balance_after = account.balance
    PointsEntry.objects.bulk_create(entries, batch_size=CHUNK)
    moved = {entry.member_id for entry in entries}
    # The rows are locked by _lock_accounts; one INSERT .. ON CONFLICT DO UPDATE writes them all
    # (bulk_update's CASE per row grows quadratically with the batch).
    now = timezone.now()
    changed = [accounts[pk] for pk in sorted(moved)]
    for account in changed:
        account.updated_at = now
    PointsAccount.objects.bulk_create(
        changed, update_conflicts=True, unique_fields=["tenant", "member"],
        update_fields=["balance", "last_sign_in_on", "sign_in_streak", "updated_at"], batch_size=CHUNK,
    )
    return entries


def _known_keys(tenant, keys):
    return set(PointsEntry.objects.filter(tenant=tenant, key__in=list(keys)).values_list("key", flat=True)) if keys else set()


def balance_of(tenant, member_id):
    return PointsAccount.objects.filter(tenant=tenant, member_id=member_id).values_list("balance", flat=True).first() or 0


def _require_member(tenant, member_id):
    if not Member.objects.filter(tenant=tenant, pk=member_id).exists():
        raise PointsError("unknown_member", _("No member with id %(id)s.") % {"id": member_id})


def adjust_points(tenant, member_id, points, *, reason, as_of, staff=None):
    """A manual adjustment with a reason. A deduction may not take the balance below zero."""
    if not points:
        raise PointsError("zero_points", _("An adjustment needs a number of points other than zero."))
    if not reason.strip():
        raise PointsError("reason_required", _("Say why the points are adjusted."))
    _require_member(tenant, member_id)
    with transaction.atomic():
        return _adjust(tenant, member_id, points, reason, as_of, staff)


def _adjust(tenant, member_id, points, reason, as_of, staff):
    accounts = _lock_accounts(tenant, [member_id])
    if points < 0 and accounts[member_id].balance + points < 0:
        raise _overdraw(accounts[member_id].balance, -points)
    entry = PointsEntry(
        member_id=member_id, kind=Kind.ADJUSTMENT, points=points, reason=reason.strip(), created_by=staff, occurred_at=as_of
    )
    return _append(tenant, accounts, [entry])[0]


def _overdraw(balance, wanted):
    return PointsError(
        "insufficient_points",
        _("The member has %(balance)d points; %(wanted)d cannot be spent.") % {"balance": balance, "wanted": wanted},
    )


def spend_points(tenant, member_id, points, *, kind, as_of, reason="", key=None):
    """Spend on an exchange, lottery, flash sale or cash-off. Refuses to overdraw. With ``key`` a
    repeat of the same spend answers the first entry and spends nothing more."""
    if kind not in PointsEntry.SPENDING:
        raise PointsError("invalid_kind", _("Points are spent on an exchange, a lottery, a flash sale or cash off."))
    if points <= 0:
        raise PointsError("invalid_points", _("Spend a positive number of points."))
    _require_member(tenant, member_id)
    with transaction.atomic():
        return _spend(tenant, member_id, points, kind, as_of, reason, key)


def _spend(tenant, member_id, points, kind, as_of, reason, key):
    accounts = _lock_accounts(tenant, [member_id])
    if key:
        earlier = PointsEntry.objects.filter(tenant=tenant, key=key).first()
        if earlier is not None:
            return earlier
    if accounts[member_id].balance < points:
        raise _overdraw(accounts[member_id].balance, points)
    entry = PointsEntry(member_id=member_id, kind=kind, points=-points, reason=reason, key=key or None, occurred_at=as_of)
    return _append(tenant, accounts, [entry])[0]


@dataclass
class SignIn:
    entry: PointsEntry
    streak: int
    first_today: bool


def sign_in(tenant, member_id, *, as_of):
    """The daily sign-in (签到): points once per day in the tenant's zone, and a bonus on every
    completed streak (e.g. each 7th day in a row)."""
    _require_member(tenant, member_id)
    with transaction.atomic():
        return _sign_in(tenant, member_id, as_of)


def _sign_in(tenant, member_id, as_of):
    accounts = _lock_accounts(tenant, [member_id])
    account = accounts[member_id]
    today = as_of.astimezone(tenant.zone).date()
    key = f"sign_in:{member_id}:{today.isoformat()}"
    if account.last_sign_in_on == today:
        return SignIn(PointsEntry.objects.get(tenant=tenant, key=key), account.sign_in_streak, first_today=False)
    rules = rules_for(tenant)
    streak = account.sign_in_streak + 1 if account.last_sign_in_on == today - timedelta(days=1) else 1
    account.last_sign_in_on, account.sign_in_streak = today, streak
    points = rules.sign_in_points
    reason = _("Daily sign-in, day %(n)d in a row") % {"n": streak}
    if streak % rules.streak_days == 0:
        points += rules.streak_bonus
        reason = _("Daily sign-in, day %(n)d in a row, streak bonus") % {"n": streak}
    entry = PointsEntry(member_id=member_id, kind=Kind.SIGN_IN, points=points, reason=reason, key=key, occurred_at=as_of)
    return SignIn(_append(tenant, accounts, [entry])[0], streak, first_today=True)


def award_points(tenant, member_ids, points, *, key, reason, as_of):
    """Points for an activity, to many members at once. ``key`` names the activity: a member who
    already got points under it gets none again. Returns the number of members credited."""
    if points <= 0:
        raise PointsError("invalid_points", _("Award a positive number of points."))
    ids = sorted(set(member_ids))
    credited = 0
    for start in range(0, len(ids), CHUNK):
        chunk = list(Member.objects.filter(tenant=tenant, pk__in=ids[start:start + CHUNK]).values_list("pk", flat=True))
        with transaction.atomic():
            accounts = _lock_accounts(tenant, chunk)
            keys = {f"{key}:{pk}": pk for pk in accounts}
            done = _known_keys(tenant, keys)
            entries = [
                PointsEntry(member_id=pk, kind=Kind.ACTIVITY, points=points, reason=reason, key=k, occurred_at=as_of)
                for k, pk in keys.items() if k not in done
            ]
            credited += len(_append(tenant, accounts, entries))
    return credited


def _floor(value):
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def earn_for_orders(tenant, member_ids, *, as_of):
    """Bring the points of these members' orders up to date: an order earns once (points per ¥1
    of the amount paid), a refund takes back the refunded share, undoing a refund gives it back.
    Idempotent: run twice, the second run finds nothing to change."""
    ids = sorted(set(member_ids))
    rate = rules_for(tenant).points_per_yuan
    written = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        if not Order.objects.filter(tenant=tenant, member_id__in=chunk).exists():
            continue
        with transaction.atomic():
            accounts = _lock_accounts(tenant, chunk)
            orders = list(
                Order.objects.filter(tenant=tenant, member_id__in=chunk)
                .values("pk", "member_id", "external_id", "total", "refunded_amount", "status")
                .order_by("placed_at", "pk")
            )
            ledger = {
                row["order_id"]: row
                for row in PointsEntry.objects.filter(tenant=tenant, order_id__in=[o["pk"] for o in orders])
                .values("order_id")
                .annotate(earned=Sum("points", filter=Q(kind=Kind.ORDER)), total=Sum("points"))
            }
            entries = []
            for order in orders:
                refunded = order["status"] == Order.Status.REFUNDED
                net = Decimal(0) if refunded else order["total"] - order["refunded_amount"]
                booked = ledger.get(order["pk"])
                if booked is None or booked["earned"] is None:
                    if refunded:
                        continue
                    points = _floor(net * rate)
                    if points > 0:
                        entries.append(PointsEntry(
                            member_id=order["member_id"], kind=Kind.ORDER, points=points, order_id=order["pk"],
                            key=f"order:{order['pk']}", occurred_at=as_of,
                            reason=_("Order %(order)s") % {"order": order["external_id"]},
                        ))
                    continue
                earned = booked["earned"]
                target = _floor(Decimal(earned) * net / order["total"]) if order["total"] else 0
                delta = target - booked["total"]
                if delta:
                    entries.append(PointsEntry(
                        member_id=order["member_id"], kind=Kind.REFUND, points=delta, order_id=order["pk"],
                        occurred_at=as_of, reason=_("Refund of order %(order)s") % {"order": order["external_id"]}
                        if delta < 0 else _("Refund of order %(order)s undone") % {"order": order["external_id"]},
                    ))
            written += len(_append(tenant, accounts, entries))
    return written


@receiver(activity_recorded, dispatch_uid="members.points.earn_for_orders")
def _orders_arrived(sender, tenant_id, member_ids, **kwargs):
    """The signal fires after commit; the points are booked by a task, off the request's path."""
    from .points_tasks import earn_points_for_orders

    earn_points_for_orders.delay(tenant_id, list(member_ids))


def expire_points(tenant, *, as_of):
    """With the end-of-next-year policy, on 1 January points earned two years back that are still
    unspent expire. Spending uses the oldest points first, so what is left of them is the balance
    minus everything earned since the start of last year. Idempotent per member and year."""
    if rules_for(tenant).expiry != PointsRules.Expiry.END_OF_NEXT_YEAR:
        return 0
    today = as_of.astimezone(tenant.zone).date()
    year = today.year - 2
    since = datetime.combine(today.replace(year=year + 1, month=1, day=1), time.min, tzinfo=tenant.zone)
    holders = list(
        PointsAccount.objects.filter(tenant=tenant, balance__gt=0).order_by("member_id").values_list("member_id", flat=True)
    )
    expired = 0
    for start in range(0, len(holders), CHUNK):
        with transaction.atomic():
            accounts = _lock_accounts(tenant, holders[start:start + CHUNK])
            recent = dict(
                PointsEntry.objects.filter(tenant=tenant, member_id__in=list(accounts), points__gt=0, occurred_at__gte=since)
                .values("member_id").annotate(n=Sum("points")).values_list("member_id", "n")
            )
            keys = {f"expiry:{year}:{pk}": pk for pk in accounts}
            done = _known_keys(tenant, keys)
            entries = []
            for key, pk in keys.items():
                lapsing = accounts[pk].balance - recent.get(pk, 0)
                if key not in done and lapsing > 0:
                    entries.append(PointsEntry(
                        member_id=pk, kind=Kind.EXPIRY, points=-lapsing, key=key, occurred_at=as_of,
                        reason=_("Points earned in %(year)d expired") % {"year": year},
                    ))
            expired += len(_append(tenant, accounts, entries))
    return expired


# ---------------------------------------------------------------- tiers

_net = ExpressionWrapper(F("total") - F("refunded_amount"), output_field=DecimalField(max_digits=14, decimal_places=2))


def _qualifying_value(tenant, basis, as_of):
    """Per member (correlated on ``member_id``): spend or points earned in the 12 months up to ``as_of``."""
    since = as_of - timedelta(days=365)
    if basis == TierSettings.Basis.POINTS:
        rows = PointsEntry.objects.filter(
            tenant=tenant, member_id=OuterRef("member_id"), kind__in=EARNING, occurred_at__gt=since, occurred_at__lte=as_of
        ).values("member_id").annotate(v=Sum("points")).values("v")
    else:
        rows = (
            Order.objects.filter(tenant=tenant, member_id=OuterRef("member_id"), placed_at__gt=since, placed_at__lte=as_of)
            .exclude(status=Order.Status.REFUNDED)
            .values("member_id").annotate(v=Sum(_net)).values("v")
        )
    money = DecimalField(max_digits=14, decimal_places=2)
    return Coalesce(Subquery(rows, output_field=money), Value(Decimal(0)), output_field=money)


def recompute_tiers(tenant, *, as_of, member_ids=None):
    """Give each member the tier their last 12 months qualify for. Upgrades take effect at once; a
    reached tier holds for ``hold_days`` and then falls to what the member qualifies for. Every
    change is logged as a TierChange. Set-based per chunk of members: one UPDATE computes every
    qualifying value, then one UPDATE per (new tier, end) group; returns the number of changes."""
    tiers = list(Tier.objects.filter(tenant=tenant).order_by("-rank"))
    if not tiers:
        return 0
    settings = tier_settings_for(tenant)
    hold = timedelta(days=settings.hold_days)
    by_pk = {tier.pk: tier for tier in tiers}
    members = Member.objects.filter(tenant=tenant)
    if member_ids is not None:
        members = members.filter(pk__in=list(member_ids))
    all_ids = list(members.order_by("pk").values_list("pk", flat=True))
    value = _qualifying_value(tenant, settings.basis, as_of)
    changes = 0
    for start in range(0, len(all_ids), CHUNK):
        chunk = all_ids[start:start + CHUNK]
        with transaction.atomic():
            MemberTier.objects.bulk_create([MemberTier(tenant=tenant, member_id=pk) for pk in chunk], ignore_conflicts=True)
            rows = MemberTier.objects.filter(tenant=tenant, member_id__in=chunk)
            rows.update(qualifying_value=value, evaluated_at=as_of)
            groups, log = {}, []
            for pk, member_id, tier_id, expires_at, amount in rows.values_list(
                "pk", "member_id", "tier_id", "expires_at", "qualifying_value"
            ):
                qualifies = next((t for t in tiers if amount >= t.threshold), None)
                held = by_pk.get(tier_id)
                if qualifies is not None and (held is None or qualifies.rank >= held.rank):
                    moved = held is None or qualifies.rank > held.rank
                    # Qualifying again keeps the tier for another full hold period.
                    groups.setdefault((qualifies.pk, moved, as_of + hold), []).append(pk)
                elif held is not None and (expires_at is None or expires_at <= as_of):
                    moved = True
                    groups.setdefault((qualifies.pk if qualifies else None, True, as_of + hold if qualifies else None), []).append(pk)
                else:
                    continue
                if moved:
                    log.append(TierChange(tenant=tenant, member_id=member_id, from_tier=held, to_tier=qualifies,
                                          qualifying_value=amount, changed_at=as_of))
            for (tier_id, moved, expires_at), pks in groups.items():
                fields = {"tier_id": tier_id, "expires_at": expires_at}
                if moved:
                    fields["reached_at"] = as_of
                MemberTier.objects.filter(tenant=tenant, pk__in=pks).update(**fields)
            TierChange.objects.bulk_create(log, batch_size=CHUNK)
            changes += len(log)
    return changes


def tiers_expiring_within(tenant, days, *, as_of):
    """Members whose tier ends within ``days`` (a key moment): a queryset of member ids."""
    return MemberTier.objects.filter(
        tenant=tenant, tier__isnull=False, expires_at__gt=as_of, expires_at__lte=as_of + timedelta(days=days)
    ).values_list("member_id", flat=True)


@transaction.atomic
def set_paid_membership(tenant, member_id, *, paid_until):
    """Start, extend or end (``paid_until`` None) a member's paid membership."""
    _require_member(tenant, member_id)
    row, _created = MemberTier.objects.get_or_create(tenant=tenant, member_id=member_id)
    row.paid_member, row.paid_until = paid_until is not None, paid_until
    row.save(update_fields=["paid_member", "paid_until"])
    return row


def end_lapsed_paid_memberships(tenant, *, as_of):
    today = as_of.astimezone(tenant.zone).date()
    return MemberTier.objects.filter(tenant=tenant, paid_member=True, paid_until__lt=today).update(paid_member=False)


# ---------------------------------------------------------------- member days

def member_days_on(tenant, day):
    """The active member days that fall on ``day`` (a date in the tenant's zone)."""
    return [md for md in MemberDay.objects.filter(tenant=tenant, active=True) if md.falls_on(day)]


def next_member_day(tenant, after):
    """(date, MemberDay) of the first member day on or after ``after``, or None if there is none."""
    days = list(MemberDay.objects.filter(tenant=tenant, active=True))
    if not days:
        return None
    for offset in range(0, 62):
        day = after + timedelta(days=offset)
        for member_day in days:
            if member_day.falls_on(day):
                return day, member_day
    return None


__all__ = [
    "PointsError", "adjust_points", "spend_points", "sign_in", "award_points", "earn_for_orders", "expire_points",
    "recompute_tiers", "tiers_expiring_within", "set_paid_membership", "member_days_on", "next_member_day",
]
