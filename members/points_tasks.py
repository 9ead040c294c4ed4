"""Nightly points and tier work: at 03:00 in each brand's time zone, recompute tiers, expire
points under the end-of-next-year policy and end lapsed paid memberships."""
from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scrm.models import Tenant
from scrm.tenancy import tenant_context

from . import points

NIGHTLY_LOCAL_HOUR = 3


def _as_of(value):
    return parse_datetime(value) if value else timezone.now()


@shared_task(name="members.points_tasks.dispatch_points_nightly")
def dispatch_points_nightly(now=None):
    """Hourly (beat): start the nightly points run of each brand whose local time is 03:xx."""
    as_of = _as_of(now)
    for tenant in Tenant.objects.order_by("pk"):
        if as_of.astimezone(tenant.zone).hour == NIGHTLY_LOCAL_HOUR:
            points_nightly.delay(tenant.pk, as_of.isoformat())


@shared_task(name="members.points_tasks.points_nightly", acks_late=True)
def points_nightly(tenant_id, as_of=None):
    """Every step is idempotent, so a redelivered run changes nothing twice."""
    with tenant_context(tenant_id) as tenant:
        moment = _as_of(as_of)
        return {
            "tier_changes": points.recompute_tiers(tenant, as_of=moment),
            "expired_members": points.expire_points(tenant, as_of=moment),
            "paid_memberships_ended": points.end_lapsed_paid_memberships(tenant, as_of=moment),
        }


@shared_task(name="members.points_tasks.earn_points_for_orders", acks_late=True)
def earn_points_for_orders(tenant_id, member_ids):
    """Book the points of these members' new and refunded orders; idempotent, so a redelivery is harmless."""
    with tenant_context(tenant_id) as tenant:
        return points.earn_for_orders(tenant, member_ids, as_of=timezone.now())
