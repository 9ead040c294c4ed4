"""Coupon tasks (queue ``outreach``): a few lines each, they call the services."""
from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scrm.models import Tenant
from scrm.tenancy import tenant_context

from . import services


def _as_of(value):
    return parse_datetime(value) if value else timezone.now()


@shared_task(name="coupons.tasks.expire_coupons_everywhere")
def expire_coupons_everywhere(now=None):
    """Beat, every few minutes: each brand's coupons past their end become expired."""
    as_of = _as_of(now).isoformat()
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        expire_coupons.delay(tenant_id, as_of)


@shared_task(name="coupons.tasks.expire_coupons", acks_late=True)
def expire_coupons(tenant_id, as_of=None):
    with tenant_context(tenant_id) as tenant:
        return services.expire_coupons(tenant, as_of=_as_of(as_of))
