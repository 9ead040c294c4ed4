"""The coupons panel of the dashboard home: coupons issued and redeemed in the last 30 days, the
redemption rate and the sales of the orders they were redeemed on, for the stores and guides the
viewer may see."""
from datetime import timedelta

from django import template
from django.urls import reverse
from django.utils import timezone

from .. import queries
from ..models import Coupon

register = template.Library()

DAYS = 30
TOP_TEMPLATES = 3


def credited_coupons(staff):
    """Coupons whose results the viewer may see, credited as the results page credits them: to the
    store and guide of the member when the coupon was issued."""
    coupons = Coupon.objects.all()
    if staff.sees_all_members:
        return coupons
    if staff.role == staff.Role.GUIDE:
        return coupons.filter(guide=staff)
    return coupons.filter(store__in=staff.stores.all())


@register.simple_tag(takes_context=True)
def coupons_dashboard(context):
    """Issued counts the coupons issued in the period (voided ones left out) and the redemption rate
    the share of them redeemed so far; redeemed and sales count the redemptions of the period,
    whenever their coupon was issued."""
    request = context["request"]
    tenant, staff = request.tenant, request.staff
    since = timezone.now() - timedelta(days=DAYS)
    coupons = credited_coupons(staff)
    cohort = queries.totals(queries.coupon_results(tenant, "template", coupons.filter(issued_at__gte=since)))
    issued = cohort["issued"]
    redeemed_rows = queries.coupon_results(
        tenant, "template", coupons.filter(status=Coupon.Status.REDEEMED, redeemed_at__gte=since),
    )
    redeemed = queries.totals(redeemed_rows)
    rate = cohort["redemption_rate"] if issued else None
    used = [r for r in redeemed_rows if r["redeemed"]]
    best = sorted(used, key=lambda r: (-r["sales"], -r["redeemed"], str(r["label"])))
    return {
        "days": DAYS,
        "issued": issued,
        "redeemed": redeemed["redeemed"],
        "rate": rate,
        "rate_pct": int(rate * 100) if rate is not None else 0,
        "sales": redeemed["sales"],
        "benefit": redeemed["benefit"],
        "top": best[:TOP_TEMPLATES],
        # The results page is for owners and operators; the others find their members' coupons.
        "results": staff.can_manage_settings,
        "url": reverse("coupons:results") if staff.can_manage_settings else reverse("coupons:search"),
    }
