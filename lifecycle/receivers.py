"""Incremental scoring: members touched by new data are re-scored soon after it is committed."""
from django.db import transaction

from .services import INCREMENTAL_BATCH


def rescore_members(sender, tenant_id, member_ids, **kwargs):
    from .tasks import score_members

    ids = sorted(set(member_ids))
    for start in range(0, len(ids), INCREMENTAL_BATCH):
        batch = ids[start:start + INCREMENTAL_BATCH]
        transaction.on_commit(lambda batch=batch: score_members.delay(tenant_id, batch))
