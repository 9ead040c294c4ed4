"""Coupons: issue, claim, redeem (核销), void, undo a redemption, expire.

Stock and per-member limits hold however many issuers run at once: every issue locks its
template's row first (a no-op UPDATE, which is also the first write of the transaction, so
SQLite takes its write lock before reading anything), counts, inserts and moves the counter in
one transaction. A redemption is one conditional UPDATE ... WHERE status IN (issued, claimed):
of two tills redeeming the same coupon at once exactly one changes the row.
"""
import secrets
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Value, When
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from members.models import Member, Order

from .models import CODE_ALPHABET, CODE_LENGTH, Coupon, CouponTemplate, format_code, normalise_code

ISSUE_CHUNK = 2000


class CouponError(Exception):
    """A refusal a clerk or an integrator can act on: ``code`` names the reason."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownCoupon(CouponError):
    def __init__(self, code):
        super().__init__("unknown_code", _("No coupon has the code %(code)s.") % {"code": code or "''"})


@dataclass
class IssueResult:
    coupon_ids: list = field(default_factory=list)
    already_issued: int = 0
    over_limit: int = 0
    out_of_stock: int = 0
    unknown_members: int = 0

    @property
    def issued(self):
        return len(self.coupon_ids)

    def as_dict(self):
        return {
            "issued": self.issued, "already_issued": self.already_issued, "over_limit": self.over_limit,
            "out_of_stock": self.out_of_stock, "unknown_members": self.unknown_members,
        }


def generate_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


def _member_ids(members):
    """A queryset of members or of member ids, a callable returning one, or an iterable of ids."""
    if callable(members):
        members = members()
    if hasattr(members, "model") and hasattr(members, "values_list"):
        if members.model is Member:
            members = members.values_list("pk", flat=True)
        return list(members.order_by())
    return list(members)


def _lock_template(template_id):
    """Take the template's row lock (Postgres) / the write lock (SQLite) and read it fresh."""
    locked = CouponTemplate.objects.filter(pk=template_id).update(issued_count=F("issued_count"))
    if not locked:
        raise CouponError("unknown_template", _("No such coupon template."))
    return CouponTemplate.objects.get(pk=template_id)


def _check_issuable(template, as_of, zone):
    if not template.active:
        raise CouponError("template_inactive", _("The template %(name)s is not active.") % {"name": template.name})
    if template.validity == CouponTemplate.Validity.FIXED:
        _start, end = template.window_for(as_of, zone)
        if end <= as_of:
            raise CouponError(
                "template_ended", _("Coupons of %(name)s could be used until %(day)s; that day has passed.")
                % {"name": template.name, "day": template.valid_until}
            )


def count_issuable(tenant, template, members):
    """How many of ``members`` would get a coupon now: the count shown before issuing."""
    template = CouponTemplate.objects.get(pk=template.pk if isinstance(template, CouponTemplate) else template)
    ids = sorted(set(_member_ids(members)))
    result = IssueResult()
    eligible = []
    for start in range(0, len(ids), ISSUE_CHUNK):
        chunk = ids[start:start + ISSUE_CHUNK]
        known = sorted(Member.objects.filter(tenant=tenant, pk__in=chunk).values_list("pk", flat=True))
        result.unknown_members += len(chunk) - len(known)
        eligible += _within_limit(tenant, template, known, result)
    remaining = template.remaining_stock
    if remaining is not None and len(eligible) > remaining:
        result.out_of_stock = len(eligible) - remaining
        eligible = eligible[:remaining]
    return {**result.as_dict(), "issued": len(eligible)}


def _within_limit(tenant, template, ids, result, key_prefix=None):
    """The ids (in order) that may still get a coupon of ``template``; counts the others on ``result``."""
    if key_prefix:
        keys = {f"{key_prefix}:{pk}": pk for pk in ids}
        done = set(
            Coupon.objects.filter(tenant=tenant, issue_key__in=list(keys)).values_list("member_id", flat=True)
        )
        result.already_issued += len(done)
        ids = [pk for pk in ids if pk not in done]
    if template.per_member_limit is None or not ids:
        return ids
    held = dict(
        Coupon.objects.filter(tenant=tenant, template=template, member_id__in=ids)
        .values("member_id").annotate(n=Count("pk")).values_list("member_id", "n")
    )
    eligible = [pk for pk in ids if held.get(pk, 0) < template.per_member_limit]
    result.over_limit += len(ids) - len(eligible)
    return eligible


def issue_coupons(tenant, template, members, *, as_of, source=Coupon.Source.MANUAL, source_ref="",
                  campaign_id=None, key_prefix=None, issued_by=None):
    """Issue one coupon of ``template`` to each of ``members`` (ids, a queryset, or a callable giving
    one: how a segment is passed in). Members over the per-member limit, or beyond the stock, get
    none. With ``key_prefix`` (e.g. "campaign:3:step:2") a member who already got a coupon under that
    key gets none again, so a retried campaign step issues nothing twice. Works in chunks, each one
    transaction holding the template's lock."""
    template_id = template.pk if isinstance(template, CouponTemplate) else template
    ids = sorted(set(_member_ids(members)))
    result = IssueResult()
    for start in range(0, len(ids), ISSUE_CHUNK):
        chunk = ids[start:start + ISSUE_CHUNK]
        with transaction.atomic():
            locked = _lock_template(template_id)
            _check_issuable(locked, as_of, tenant.zone)
            members_by_id = {
                m["pk"]: m for m in Member.objects.filter(tenant=tenant, pk__in=chunk).values("pk", "home_store_id", "owner_guide_id")
            }
            result.unknown_members += len(chunk) - len(members_by_id)
            eligible = _within_limit(tenant, locked, sorted(members_by_id), result, key_prefix)
            remaining = locked.remaining_stock
            if remaining is not None and len(eligible) > remaining:
                result.out_of_stock += len(eligible) - remaining
                eligible = eligible[:remaining]
            if not eligible:
                continue
            valid_from, expires_at = locked.window_for(as_of, tenant.zone)
            coupons = [
                Coupon(
                    tenant=tenant, template_id=template_id, member_id=pk, source=source, source_ref=source_ref,
                    campaign_id=campaign_id, issue_key=f"{key_prefix}:{pk}" if key_prefix else None,
                    store_id=members_by_id[pk]["home_store_id"], guide_id=members_by_id[pk]["owner_guide_id"],
                    issued_by=issued_by, issued_at=as_of, valid_from=valid_from, expires_at=expires_at,
                )
                for pk in eligible
            ]
            _insert_with_fresh_codes(coupons)
            CouponTemplate.objects.filter(pk=template_id).update(issued_count=F("issued_count") + len(coupons))
            result.coupon_ids.extend(c.pk for c in coupons)
    return result


def _insert_with_fresh_codes(coupons, attempts=3):
    """A code clash is about one in 10**14 per pair; if it happens, draw new codes and insert again."""
    for attempt in range(attempts):
        for coupon in coupons:
            coupon.code = generate_code()
        try:
            with transaction.atomic():
                Coupon.objects.bulk_create(coupons, batch_size=1000)
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise


# ---------------------------------------------------------------- lookups

def get_coupon(tenant, code):
    clean = normalise_code(code)
    coupon = Coupon.objects.filter(tenant=tenant, code=clean).select_related("template", "member", "tenant").first()
    if coupon is None:
        raise UnknownCoupon(format_code(clean) if clean else code)
    return coupon


# ---------------------------------------------------------------- claim

def claim_coupon(tenant, code, *, as_of):
    """The member took the coupon into their wallet (领取). Claiming again changes nothing."""
    coupon = get_coupon(tenant, code)
    Coupon.objects.filter(pk=coupon.pk, status=Coupon.Status.ISSUED).update(status=Coupon.Status.CLAIMED, claimed_at=as_of)
    coupon.refresh_from_db()
    if coupon.status not in (Coupon.Status.CLAIMED, Coupon.Status.REDEEMED):
        raise _refusal(coupon, as_of)
    return coupon


# ---------------------------------------------------------------- redeem

@dataclass
class Redemption:
    coupon: Coupon
    replayed: bool


def _local(moment, tenant):
    return formats.date_format(timezone.localtime(moment, tenant.zone), "Y-m-d H:i")


def _refusal(coupon, as_of):
    """Why ``coupon`` cannot be used now."""
    status = coupon.status
    tenant = coupon.tenant
    if status == Coupon.Status.REDEEMED:
        return CouponError(
            "already_redeemed",
            _("Coupon %(code)s was already redeemed at %(when)s for order %(order)s.")
            % {"code": coupon.display_code, "when": _local(coupon.redeemed_at, tenant), "order": coupon.order_external_id},
        )
    if status == Coupon.Status.VOIDED:
        return CouponError("voided", _("Coupon %(code)s was voided.") % {"code": coupon.display_code})
    if status == Coupon.Status.EXPIRED or coupon.expires_at <= as_of:
        return CouponError(
            "expired", _("Coupon %(code)s expired at %(when)s.") % {"code": coupon.display_code, "when": _local(coupon.expires_at, tenant)}
        )
    if coupon.valid_from > as_of:
        return CouponError(
            "not_yet_valid", _("Coupon %(code)s can be used from %(when)s.")
            % {"code": coupon.display_code, "when": _local(coupon.valid_from, tenant)}
        )
    return CouponError("not_usable", _("Coupon %(code)s cannot be used.") % {"code": coupon.display_code})


def redeem_coupon(tenant, code, *, order_external_id, amount, as_of, store=None, guide=None, categories=None):
    """Redeem (核销) a coupon against an order. The same code and order again answers the same
    redemption (``replayed``); anything else refused raises CouponError naming the reason."""
    coupon = get_coupon(tenant, code)
    if coupon.status == Coupon.Status.REDEEMED and coupon.order_external_id == order_external_id:
        return Redemption(coupon, replayed=True)
    if coupon.status not in Coupon.USABLE or coupon.expires_at <= as_of or coupon.valid_from > as_of:
        raise _refusal(coupon, as_of)
    template = coupon.template
    if amount < template.threshold:
        raise CouponError(
            "below_threshold",
            _("The order amount ¥%(amount)s is below the coupon's threshold of ¥%(threshold)s.")
            % {"amount": amount, "threshold": template.threshold},
        )
    allowed_stores = list(template.stores.values_list("pk", flat=True))
    if allowed_stores:
        if store is None:
            raise CouponError("store_required", _("This coupon is valid only in some stores: say which store redeems it."))
        if store.pk not in allowed_stores:
            raise CouponError(
                "wrong_store", _("Coupon %(code)s is not valid in store %(store)s.")
                % {"code": coupon.display_code, "store": store.code}
            )
    if template.categories:
        if not categories:
            raise CouponError(
                "categories_required", _("This coupon is valid only for some categories: send the order's categories.")
            )
        if not set(template.categories) & set(categories):
            raise CouponError(
                "wrong_category", _("Coupon %(code)s is valid only for %(categories)s.")
                % {"code": coupon.display_code, "categories": ", ".join(template.categories)}
            )
    changed = Coupon.objects.filter(
        pk=coupon.pk, status__in=Coupon.USABLE, expires_at__gt=as_of, valid_from__lte=as_of
    ).update(
        status=Coupon.Status.REDEEMED, redeemed_at=as_of, order_external_id=order_external_id, order_amount=amount,
        benefit_amount=template.benefit_for(amount), redeemed_store=store, redeemed_guide=guide, unredeemed_at=None,
    )
    coupon.refresh_from_db()
    if changed:
        return Redemption(coupon, replayed=False)
    if coupon.status == Coupon.Status.REDEEMED and coupon.order_external_id == order_external_id:
        return Redemption(coupon, replayed=True)
    raise _refusal(coupon, as_of)


# ---------------------------------------------------------------- void, undo

def void_coupon(tenant, code, *, as_of, reason=""):
    coupon = get_coupon(tenant, code)
    if coupon.status == Coupon.Status.VOIDED:
        return coupon
    changed = Coupon.objects.filter(pk=coupon.pk, status__in=Coupon.USABLE).update(
        status=Coupon.Status.VOIDED, voided_at=as_of, void_reason=reason
    )
    coupon.refresh_from_db()
    if not changed and coupon.status != Coupon.Status.VOIDED:
        raise CouponError(
            "not_voidable", _("Coupon %(code)s is %(status)s and cannot be voided.")
            % {"code": coupon.display_code, "status": coupon.get_status_display()}
        )
    return coupon


_BACK_TO_USABLE = {
    "status": Case(When(claimed_at__isnull=False, then=Value(Coupon.Status.CLAIMED)), default=Value(Coupon.Status.ISSUED)),
    "redeemed_at": None, "order_amount": None, "benefit_amount": None, "redeemed_store": None, "redeemed_guide": None,
}


def unredeem_coupon(tenant, code, *, order_external_id, as_of):
    """Undo a redemption (the order was refunded): the coupon can be used again until it expires.
    Undoing it again, or for another order, changes nothing."""
    coupon = get_coupon(tenant, code)
    if coupon.status == Coupon.Status.REDEEMED and coupon.order_external_id != order_external_id:
        raise CouponError(
            "other_order", _("Coupon %(code)s was redeemed for order %(order)s, not %(given)s.")
            % {"code": coupon.display_code, "order": coupon.order_external_id, "given": order_external_id}
        )
    Coupon.objects.filter(pk=coupon.pk, status=Coupon.Status.REDEEMED, order_external_id=order_external_id).update(
        unredeemed_at=as_of, **_BACK_TO_USABLE
    )
    coupon.refresh_from_db()
    return coupon


def unredeem_refunded_orders(tenant, member_ids, *, as_of):
    """Set-based: coupons of these members redeemed for an order that is now fully refunded become
    usable again. Idempotent: a coupon that is no longer redeemed is left alone."""
    refunded = Order.objects.filter(
        tenant=tenant, external_id=OuterRef("order_external_id"), status=Order.Status.REFUNDED
    )
    return Coupon.objects.filter(
        Exists(refunded), tenant=tenant, member_id__in=list(member_ids), status=Coupon.Status.REDEEMED
    ).update(unredeemed_at=as_of, **_BACK_TO_USABLE)


# ---------------------------------------------------------------- expiry

def expire_coupons(tenant, *, as_of):
    """Issued and claimed coupons past their end become expired. One UPDATE; running it twice is harmless."""
    return Coupon.objects.filter(tenant=tenant, status__in=Coupon.USABLE, expires_at__lte=as_of).update(
        status=Coupon.Status.EXPIRED, expired_at=as_of
    )

