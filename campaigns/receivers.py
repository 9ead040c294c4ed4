"""Campaigns react to lifecycle runs: the run's stage changes enrol members, once per run."""
from django.dispatch import receiver

from lifecycle.signals import run_finished


@receiver(run_finished, dispatch_uid="campaigns.enrol_after_run")
def _run_finished(sender, tenant_id, run_id, **kwargs):
    from .tasks import enrol_after_run

    enrol_after_run.delay(tenant_id, run_id)
