"""The WeCom (企业微信) connector's state: tokens, callback receipts, tag mappings.

The access token lives in the database rather than the cache so that every web process and
worker shares one token (gettoken is rate limited) whether or not Redis is configured, and a
test's token goes away with its transaction.
"""
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.tenancy import TenantOwned
from tagging.models import Tag, TagGroup

__all__ = ["WeComToken", "WeComCallback", "WeComTagLink", "WeComMarkedTag"]


class WeComToken(TenantOwned):
    corp_id = models.CharField(max_length=64)
    access_token = models.CharField(max_length=600)
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "corp_id"], name="wecomtoken_one_per_corp")]


class WeComCallback(TenantOwned):
    """One receipt per distinct callback: WeCom retries a callback it thinks failed, and the
    unique key (a hash of what the message says, not of its encryption) makes the retry a no-op."""

    class Outcome(models.TextChoices):
        DONE = "done", _("Handled")
        IGNORED = "ignored", _("Recorded only")
        FAILED = "failed", _("Failed")

    key = models.CharField(max_length=64)
    event = models.CharField(_("event"), max_length=60, blank=True)
    change_type = models.CharField(_("change type"), max_length=60, blank=True)
    userid = models.CharField(_("WeCom user id"), max_length=64, blank=True)
    external_userid = models.CharField(_("WeCom external user id"), max_length=64, blank=True)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    payload = models.JSONField(_("message"), default=dict)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices, default=Outcome.DONE)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("WeCom callback")
        verbose_name_plural = _("WeCom callbacks")
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="wecomcallback_key_unique")]
        indexes = [models.Index(fields=["tenant", "received_at"], name="wecomcallback_tenant_received")]


class WeComTagLink(TenantOwned):
    """Our tag group or tag ↔ its WeCom corp tag group or corp tag. A row without ``tag`` is the group's.

    A link outlives the group or tag it names (no cascade, no database constraint): deleting a
    group or tag here leaves its WeCom id behind for the next tag sync, which deletes the corp tag
    group or tag in WeCom and then the link."""

    group = models.ForeignKey(TagGroup, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    tag = models.ForeignKey(
        Tag, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    wecom_id = models.CharField(max_length=64)
    name = models.CharField(max_length=60)
    synced_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "group"], condition=Q(tag__isnull=True),
                                    name="wecomtaglink_one_per_group"),
            models.UniqueConstraint(fields=["tenant", "tag"], condition=Q(tag__isnull=False),
                                    name="wecomtaglink_one_per_tag"),
            models.UniqueConstraint(fields=["tenant", "wecom_id"], name="wecomtaglink_wecom_id_unique"),
        ]


class WeComMarkedTag(TenantOwned):
    """A corp tag we have marked on a member's WeCom contact, so a sync sends only the difference."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)
    marked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "member", "tag"], name="wecommarkedtag_unique")]
