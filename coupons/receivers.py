"""Coupons react to members' batches: a refunded order gives its coupons back."""
from django.dispatch import receiver
from django.utils import timezone

from members.signals import activity_recorded
from scrm.tenancy import tenant_context

from .services import unredeem_refunded_orders


@receiver(activity_recorded, dispatch_uid="coupons.unredeem_refunded_orders")
def _orders_changed(sender, tenant_id, member_ids, **kwargs):
    with tenant_context(tenant_id) as tenant:
        unredeem_refunded_orders(tenant, member_ids, as_of=timezone.now())
