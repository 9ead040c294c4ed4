"""Automatic tags follow the lifecycle: after every scoring run, the members it scored are re-tagged."""
from django.db import transaction


def refresh_after_lifecycle_run(sender, tenant_id, run_id=None, member_ids=None, **kwargs):
    from lifecycle.models import LifecycleRun

    from .tasks import refresh_automatic_tags

    as_of = (
        LifecycleRun.objects.unscoped().filter(pk=run_id, tenant_id=tenant_id).values_list("as_of", flat=True).first()
        if run_id else None
    )
    ids = sorted(set(member_ids)) if member_ids is not None else None
    transaction.on_commit(
        lambda: refresh_automatic_tags.delay(tenant_id, ids, as_of.isoformat() if as_of else None)
    )


def install_demo_content(sender, tenant_id, as_of, **kwargs):
    """The demo brand ships a set of tag groups (both kinds) and the brief's example segments."""
    from scrm.tenancy import tenant_context

    from .demo import install_demo_tags
    from .tasks import refresh_automatic_tags

    with tenant_context(tenant_id) as tenant:
        install_demo_tags(tenant)
    refresh_automatic_tags.delay(tenant_id, as_of=as_of.isoformat())
