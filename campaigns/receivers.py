"""Campaigns react to lifecycle runs: the run's stage changes enrol members, once per run."""
from django.dispatch import receiver

from lifecycle.signals import run_finished
from members.signals import demo_seeded
from scrm.tenancy import tenant_context


@receiver(run_finished, dispatch_uid="campaigns.enrol_after_run")
def _run_finished(sender, tenant_id, run_id, **kwargs):
    from .tasks import enrol_after_run

    enrol_after_run.delay(tenant_id, run_id)


@receiver(demo_seeded, dispatch_uid="campaigns.demo")
def install_demo_content(sender, tenant_id, as_of, **kwargs):
    """The demo brand ships a working SOP library that has run for the last month, with results to
    look at and today's tasks waiting in the guides' lists."""
    from .demo import DEFAULT_SEED, install_demo_campaigns

    with tenant_context(tenant_id) as tenant:
        install_demo_campaigns(tenant, as_of, seed=kwargs.get("seed", DEFAULT_SEED))


@receiver(demo_seeded, dispatch_uid="campaigns.demo_acquisition")
def install_demo_acquisition(sender, tenant_id, as_of, **kwargs):
    """The demo brand's live codes come with joins, landing views and a few deletions to report on."""
    from .demo_acquisition import install_demo_acquisition

    with tenant_context(tenant_id) as tenant:
        install_demo_acquisition(tenant, as_of)
