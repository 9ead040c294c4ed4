"""Mass-loss alerts (批量删好友预警): a guide lost many WeCom contacts on one local day.

One row per brand, guide and day: the daily check that finds the loss creates it, and the unique
key makes a retried or repeated check a no-op, so the people told are told once. The row keeps
whom it told and through which channel, and who acknowledged it.
"""
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.models import Staff, Store
from scrm.tenancy import TenantOwned

__all__ = ["ChurnAlert"]


class ChurnAlert(TenantOwned):
    guide = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="+", verbose_name=_("guide"))
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("store")
    )
    day = models.DateField(_("day"))
    deletions = models.PositiveIntegerField(_("contacts lost"))
    threshold = models.PositiveIntegerField(_("alert threshold"))
    created_at = models.DateTimeField(_("found at"))
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    # [{"id", "name", "role"}] of the staff the alert was meant for.
    recipients = models.JSONField(_("recipients"), default=list, blank=True)
    # {"wecom": {"status", "to", "missed", "detail"}, "email": {"status", "to", "detail"}}: what was sent.
    channels = models.JSONField(_("channels"), default=dict, blank=True)
    acknowledged_by = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("acknowledged by")
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("mass-loss alert")
        verbose_name_plural = _("mass-loss alerts")
        ordering = ["-day", "-deletions", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "guide", "day"], name="churnalert_one_per_guide_day"),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="churnalert_tenant_day")]

    def __str__(self):
        return f"{self.guide_id} {self.day}: {self.deletions}"

    @property
    def acknowledged(self):
        return self.acknowledged_at is not None
