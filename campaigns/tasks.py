"""Campaign tasks (queue ``outreach``): a few lines each, they call the services."""
from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lifecycle.models import LifecycleRun
from scrm.models import Tenant
from scrm.tenancy import tenant_context

from . import delivery, services


def _as_of(value):
    return parse_datetime(value) if value else timezone.now()


@shared_task(name="campaigns.tasks.enrol_after_run", acks_late=True)
def enrol_after_run(tenant_id, run_id):
    """A lifecycle run finished: enrol its stage changes, then run the steps that are due now."""
    with tenant_context(tenant_id) as tenant:
        run = LifecycleRun.objects.get(pk=run_id)
        enrolled = services.enrol_from_run(tenant, run_id, run.as_of)
    if any(enrolled.values()):
        run_due_steps.delay(tenant_id, campaign_ids=[pk for pk, n in enrolled.items() if n])
    return enrolled


@shared_task(name="campaigns.tasks.run_due_steps", acks_late=True)
def run_due_steps(tenant_id, as_of=None, campaign_ids=None):
    as_of = _as_of(as_of)
    with tenant_context(tenant_id) as tenant:
        result = services.run_due_steps(tenant, as_of, campaign_ids=campaign_ids)
    if result.messages:
        deliver_messages.delay(tenant_id, as_of.isoformat())
    return result.as_dict()


@shared_task(name="campaigns.tasks.enrol_daily", acks_late=True)
def enrol_daily(tenant_id, as_of=None):
    """Daily enrolments (claimed once a local day), then the steps due now, held ones included."""
    with tenant_context(tenant_id) as tenant:
        enrolled = services.enrol_daily(tenant, _as_of(as_of))
    run_due_steps.delay(tenant_id, as_of)
    return enrolled


@shared_task(name="campaigns.tasks.tick")
def tick(now=None):
    """Beat, every few minutes: each brand's daily enrolments (claimed once a local day) and due steps."""
    as_of = _as_of(now).isoformat()
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        enrol_daily.delay(tenant_id, as_of)
        deliver_messages.delay(tenant_id, as_of)


@shared_task(name="campaigns.tasks.deliver_messages", acks_late=True)
def deliver_messages(tenant_id, as_of=None):
    with tenant_context(tenant_id) as tenant:
        return delivery.deliver_due(tenant, _as_of(as_of))


@shared_task(name="campaigns.tasks.sync_wecom_tags", acks_late=True)
def sync_wecom_tags(tenant_id, as_of=None):
    """Mirror tag groups and tags to WeCom corp tags and mark them on guides' contacts."""
    from .wecom.tagsync import sync_tags

    with tenant_context(tenant_id) as tenant:
        return sync_tags(tenant, _as_of(as_of))


@shared_task(name="campaigns.tasks.check_churn_alerts")
def check_churn_alerts(now=None):
    """Beat, daily: each brand's guides who lost many contacts on its previous local day."""
    as_of = _as_of(now).isoformat()
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        check_mass_losses.delay(tenant_id, as_of)


@shared_task(name="campaigns.tasks.check_mass_losses", acks_late=True)
def check_mass_losses(tenant_id, as_of=None, threshold=None):
    """Record and notify each guide over the threshold on the brand's previous local day, once."""
    from .alerts import alert_mass_losses

    with tenant_context(tenant_id) as tenant:
        return alert_mass_losses(tenant, _as_of(as_of), threshold)
