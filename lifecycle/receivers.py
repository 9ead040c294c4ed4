"""Incremental scoring: members touched by new data are re-scored soon after it is committed."""
from datetime import timedelta

from django.db import transaction

from .services import INCREMENTAL_BATCH


def rescore_members(sender, tenant_id, member_ids, **kwargs):
    from .tasks import score_members

    ids = sorted(set(member_ids))
    for start in range(0, len(ids), INCREMENTAL_BATCH):
        batch = ids[start:start + INCREMENTAL_BATCH]
        transaction.on_commit(lambda batch=batch: score_members.delay(tenant_id, batch))


# Days of lifecycle history the demo brand arrives with.
DEMO_HISTORY_DAYS = 90


def install_demo_history(sender, tenant_id, as_of, **kwargs):
    """The demo brand arrives with years of orders: rebuild its last 90 days of lifecycle history
    (as a brand importing its past would, with the backfill), so that the trend, the flows and the
    win-backs have something to show, then score it as of the seeding moment."""
    from scrm.tenancy import tenant_context

    from . import services

    with tenant_context(tenant_id) as tenant:
        today = services.local_day(tenant, as_of)
        services.backfill(tenant, today - timedelta(days=DEMO_HISTORY_DAYS), today - timedelta(days=1), announce=False)
        services.score_full(tenant, as_of)
