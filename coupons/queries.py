"""Read-only helpers: results (核销率 and sales by template, campaign, store, guide) and key moments."""
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from scrm.models import Staff, Store

from .models import Coupon, CouponTemplate

GROUPS = {
    "template": ("template_id", CouponTemplate, "name"),
    "campaign": ("campaign_id", None, None),
    "store": ("store_id", Store, "name"),
    "guide": ("guide_id", Staff, "name"),
}
_money = DecimalField(max_digits=14, decimal_places=2)
ZERO = Decimal("0.00")


def coupon_results(tenant, group_by="template", coupons=None):
    """One row per group: issued (voided left out), claimed, redeemed, expired, voided, the
    redemption rate (redeemed / issued) and the sales and amount off of the redeeming orders.
    Store and guide are the member's at issue: results are credited to whoever owned the member."""
    column, model, label_field = GROUPS[group_by]
    coupons = Coupon.objects.filter(tenant=tenant) if coupons is None else coupons
    rows = list(
        coupons.values(column).annotate(
            all=Count("pk"),
            voided=Count("pk", filter=Q(status=Coupon.Status.VOIDED)),
            claimed=Count("pk", filter=Q(claimed_at__isnull=False) & ~Q(status=Coupon.Status.VOIDED)),
            redeemed=Count("pk", filter=Q(status=Coupon.Status.REDEEMED)),
            expired=Count("pk", filter=Q(status=Coupon.Status.EXPIRED)),
            sales=Coalesce(Sum("order_amount", filter=Q(status=Coupon.Status.REDEEMED)), Value(ZERO), output_field=_money),
            benefit=Coalesce(Sum("benefit_amount", filter=Q(status=Coupon.Status.REDEEMED)), Value(ZERO), output_field=_money),
        ).order_by(column)
    )
    labels = {}
    keys = [row[column] for row in rows if row[column] is not None]
    if model is not None and keys:
        labels = dict(model.objects.filter(tenant=tenant, pk__in=keys).values_list("pk", label_field))
    result = []
    for row in rows:
        key = row[column]
        issued = row["all"] - row["voided"]
        if key is None:
            label = _("None")
        elif model is None:
            label = _("Campaign %(id)s") % {"id": key}
        else:
            label = labels.get(key, str(key))
        result.append({
            "key": key, "label": label, "issued": issued, "claimed": row["claimed"], "redeemed": row["redeemed"],
            "expired": row["expired"], "voided": row["voided"],
            "redemption_rate": (Decimal(row["redeemed"]) / issued).quantize(Decimal("0.0001")) if issued else Decimal("0"),
            "sales": row["sales"], "benefit": row["benefit"],
        })
    return result


def totals(rows):
    issued = sum(r["issued"] for r in rows)
    redeemed = sum(r["redeemed"] for r in rows)
    return {
        "issued": issued, "claimed": sum(r["claimed"] for r in rows), "redeemed": redeemed,
        "expired": sum(r["expired"] for r in rows), "voided": sum(r["voided"] for r in rows),
        "redemption_rate": (Decimal(redeemed) / issued).quantize(Decimal("0.0001")) if issued else Decimal("0"),
        "sales": sum((r["sales"] for r in rows), ZERO), "benefit": sum((r["benefit"] for r in rows), ZERO),
    }


def coupons_expiring_within(tenant, days, *, as_of, template_id=None):
    """Coupons still usable that expire within ``days`` (a key moment and a segment condition)."""
    qs = Coupon.objects.filter(
        tenant=tenant, status__in=Coupon.USABLE, expires_at__gt=as_of, expires_at__lte=as_of + timedelta(days=days)
    )
    if template_id is not None:
        qs = qs.filter(template_id=template_id)
    return qs


def members_with_coupons_expiring_within(tenant, days, *, as_of, template_id=None):
    """Member ids (a queryset a segment can use as a subquery) holding a coupon that expires within ``days``."""
    return coupons_expiring_within(tenant, days, as_of=as_of, template_id=template_id).values("member_id").distinct()
