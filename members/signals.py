"""One signal per batch (never per member) so that higher apps can react to new data.

members_changed(tenant_id, member_ids): members were created or their profile changed.
activity_recorded(tenant_id, member_ids): orders, refunds or events arrived for these members.
demo_seeded(tenant_id, as_of, seed): the demo brand was seeded; higher apps add their demo content
(tag groups, segments, campaigns). Their receivers must be safe to run twice.
"""
from django.dispatch import Signal

members_changed = Signal()
activity_recorded = Signal()
demo_seeded = Signal()
