"""One signal per batch (never per member) so that higher apps can react to new data.

members_changed(tenant_id, member_ids): members were created or their profile changed.
activity_recorded(tenant_id, member_ids): orders, refunds or events arrived for these members.
"""
from django.dispatch import Signal

members_changed = Signal()
activity_recorded = Signal()
