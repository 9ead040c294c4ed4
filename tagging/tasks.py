"""Tagging tasks (queue ``scoring``): a few lines each, they call the services."""
from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scrm.tenancy import tenant_context

from . import services
from .segment_coupons import run_issue


@shared_task(name="tagging.tasks.refresh_automatic_tags")
def refresh_automatic_tags(tenant_id, member_ids=None, as_of=None, group_ids=None):
    """Re-evaluate automatic tags of every member, or of ``member_ids`` only."""
    with tenant_context(tenant_id) as tenant:
        moment = parse_datetime(as_of) if as_of else timezone.now()
        return services.refresh_automatic_tags(tenant, moment, member_ids=member_ids, group_ids=group_ids)


@shared_task(name="tagging.tasks.issue_segment_coupons", acks_late=True)
def issue_segment_coupons(tenant_id, run_id, as_of=None):
    """Issue a coupon to each member of a segment (a run started on the segment page); safe to run again."""
    with tenant_context(tenant_id) as tenant:
        return run_issue(tenant, run_id, parse_datetime(as_of) if as_of else timezone.now())
