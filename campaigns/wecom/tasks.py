"""WeCom connector tasks (queue ``outreach``): a few lines each, they call the services."""
from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scrm.tenancy import tenant_context

from .. import acquisition
from ..models import LiveCode


def _as_of(value):
    return parse_datetime(value) if value else timezone.now()


@shared_task(name="campaigns.wecom.tasks.retry_contact_way_removals_all", queue="outreach")
def retry_contact_way_removals_all(now=None):
    """Beat: the brands with archived live codes whose WeCom contact way is still there."""
    as_of = _as_of(now).isoformat()
    codes = acquisition.contact_ways_to_remove(LiveCode.objects.unscoped())
    for tenant_id in codes.order_by("tenant_id").values_list("tenant_id", flat=True).distinct():
        retry_contact_way_removals.delay(tenant_id, as_of)


@shared_task(name="campaigns.wecom.tasks.retry_contact_way_removals", acks_late=True, queue="outreach")
def retry_contact_way_removals(tenant_id, as_of=None):
    with tenant_context(tenant_id) as tenant:
        return acquisition.retry_contact_way_removals(tenant, _as_of(as_of))
