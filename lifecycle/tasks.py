"""Scoring tasks (queue ``scoring``): a few lines each, they call the services."""
from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scrm.tenancy import tenant_context

from . import services
from .models import LifecycleRun


def _as_of(value):
    return parse_datetime(value) if value else timezone.now()


@shared_task(name="lifecycle.tasks.score_members")
def score_members(tenant_id, member_ids, as_of=None):
    """Incremental run for members touched by new orders, refunds, events or profile changes."""
    with tenant_context(tenant_id) as tenant:
        run = services.score_members(tenant, member_ids, _as_of(as_of))
        return run.pk if run else None


@shared_task(name="lifecycle.tasks.dispatch_nightly_runs")
def dispatch_nightly_runs(now=None):
    """Every few minutes (beat): start tonight's run of each brand whose local 02:00 has passed."""
    for run in services.claim_due_nightly_runs(_as_of(now)):
        execute_scheduled_run.delay(run.tenant_id, run.pk)


@shared_task(name="lifecycle.tasks.execute_scheduled_run")
def execute_scheduled_run(tenant_id, run_id):
    with tenant_context(tenant_id):
        run = LifecycleRun.objects.get(pk=run_id, status=LifecycleRun.Status.QUEUED)
        return services.execute_run(run).pk


@shared_task(name="lifecycle.tasks.score_lifecycle")
def score_lifecycle(tenant_id, full=False, as_of=None):
    with tenant_context(tenant_id) as tenant:
        scorer = services.score_full if full else services.score_nightly
        return scorer(tenant, _as_of(as_of)).pk
