from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import Staff
from scrm.tenancy import TenantOwned


class TagSource(models.TextChoices):
    MANUAL = "manual", _("Manual")
    AUTOMATIC = "automatic", _("Automatic")
    IMPORT = "import", _("Import")
    CAMPAIGN = "campaign", _("Campaign")


class TagGroup(TenantOwned):
    """A group of tags (标签组). Automatic groups are kept by their tags' rules; manual ones by people."""

    class Kind(models.TextChoices):
        MANUAL = "manual", _("Manual")
        AUTOMATIC = "automatic", _("Automatic")

    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    exclusive = models.BooleanField(
        _("exclusive"), default=False, help_text=_("A member holds at most one tag of this group.")
    )
    description = models.CharField(_("description"), max_length=300, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="taggroup_name_unique_per_tenant")]

    def __str__(self):
        return self.name

    @property
    def automatic(self):
        return self.kind == self.Kind.AUTOMATIC


class Tag(TenantOwned):
    """A tag. In an automatic group, ``rule`` is a condition tree (the segment grammar) that says
    who holds it; in an exclusive automatic group the first matching tag by position wins."""

    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags", verbose_name=_("group"))
    name = models.CharField(_("name"), max_length=60)
    colour = models.CharField(_("colour"), max_length=7, default="#6c757d")
    description = models.CharField(_("description"), max_length=300, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    rule = models.JSONField(_("rule"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "group", "name"], name="tag_name_unique_per_group"),
        ]
        indexes = [models.Index(fields=["tenant", "group"], name="tag_tenant_group")]

    def __str__(self):
        return f"{self.group.name}: {self.name}" if "group" in self._state.fields_cache else self.name


class MemberTag(TenantOwned):
    """A tag a member holds, with where it came from, who gave it and when."""

    # Bulk tagging writes 100,000s of rows at once: only the indexes and foreign-key checks that
    # earn their keep (the composite indexes below serve the reads; deleting a tag or a staff
    # member is rare and may scan).
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="member_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="member_tags", db_index=False)
    # Denormalised from the tag (a tag never changes group) so that a group is refreshed in one pass.
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    source = models.CharField(_("source"), max_length=10, choices=TagSource.choices, default=TagSource.MANUAL)
    added_by = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False, db_constraint=False
    )
    added_at = models.DateTimeField(_("added at"))

    class Meta:
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")
        constraints = [models.UniqueConstraint(fields=["tenant", "member", "tag"], name="membertag_unique")]
        indexes = [
            models.Index(fields=["tenant", "tag", "member"], name="membertag_tenant_tag"),
            models.Index(fields=["tenant", "group", "member"], name="membertag_tenant_group"),
        ]


class TagChange(TenantOwned):
    """The log of every tag gained or lost: who, when, by what."""

    class Action(models.TextChoices):
        ADDED = "added", _("Gained")
        REMOVED = "removed", _("Lost")

    # A log written in bulk: no foreign-key checks per row (deletes still cascade through Django).
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="changes", db_constraint=False, db_index=False)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    source = models.CharField(_("source"), max_length=10, choices=TagSource.choices)
    staff = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False, db_index=False
    )
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("tag change")
        verbose_name_plural = _("tag changes")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "tag", "at"], name="tagchange_tenant_tag_at"),
            models.Index(fields=["tenant", "member", "at"], name="tagchange_tenant_member_at"),
        ]


class Segment(TenantOwned):
    """A saved condition tree over members (人群包), evaluated when used."""

    name = models.CharField(_("name"), max_length=80)
    description = models.CharField(_("description"), max_length=300, blank=True)
    rules = models.JSONField(_("rules"))
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_count = models.PositiveIntegerField(_("last count"), null=True, blank=True)
    last_evaluated_at = models.DateTimeField(_("last evaluated"), null=True, blank=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="segment_name_unique_per_tenant")]

    def __str__(self):
        return self.name


class SegmentSnapshot(TenantOwned):
    """A segment's member list frozen at a moment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    rules = models.JSONField(_("rules"))
    taken_at = models.DateTimeField(_("taken at"))
    member_count = models.PositiveIntegerField(_("members"), default=0)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("segment snapshot")
        verbose_name_plural = _("segment snapshots")
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["tenant", "segment", "taken_at"], name="snapshot_tenant_segment")]


class SnapshotMember(TenantOwned):
    snapshot = models.ForeignKey(SegmentSnapshot, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "snapshot", "member"], name="snapshotmember_unique"),
        ]
