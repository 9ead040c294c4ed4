"""Per-member lifecycle state, the stage rules, scoring runs, stage history and daily snapshots.

The scoring statements in ``lifecycle.scoring`` write these tables directly in SQL, so the
column names here are part of that contract.
"""
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import ContactStatus, Member
from scrm.models import Staff, Store
from scrm.tenancy import TenantOwned


class Stage(models.TextChoices):
    INTRODUCTION = "introduction", _("Introduction")
    GROWTH = "growth", _("Growth")
    MATURITY = "maturity", _("Maturity")
    DORMANT = "dormant", _("Dormant")
    CHURNED = "churned", _("Churned")


# The order operators read the stages in (funnel first, then decline).
STAGE_ORDER = [Stage.INTRODUCTION, Stage.GROWTH, Stage.MATURITY, Stage.DORMANT, Stage.CHURNED]
ACTIVE_STAGES = (Stage.GROWTH, Stage.MATURITY)
LAPSED_STAGES = (Stage.DORMANT, Stage.CHURNED)


class Rule(models.TextChoices):
    """Which row of the stage table matched (the first that matches wins)."""

    CHURNED_LAPSED = "churned_lapsed", _("No order for churn_after_days or more")
    CHURNED_NEVER_BOUGHT = "churned_never_bought", _("Never ordered within intro_churn_days of joining")
    CHURNED_DELETED_CONTACT = "churned_deleted_contact", _("Deleted the guide and has not ordered since")
    DORMANT = "dormant", _("No order for dormant_after_days or more")
    MATURITY = "maturity", _("At least mature_min_orders orders in the last 365 days")
    GROWTH = "growth", _("Has ordered")
    INTRODUCTION = "introduction", _("Has not ordered yet")


RULE_STAGE = {
    Rule.CHURNED_LAPSED: Stage.CHURNED,
    Rule.CHURNED_NEVER_BOUGHT: Stage.CHURNED,
    Rule.CHURNED_DELETED_CONTACT: Stage.CHURNED,
    Rule.DORMANT: Stage.DORMANT,
    Rule.MATURITY: Stage.MATURITY,
    Rule.GROWTH: Stage.GROWTH,
    Rule.INTRODUCTION: Stage.INTRODUCTION,
}


class WarningRule(models.TextChoices):
    NONE = "", _("No warning")
    NO_RECENT_ORDER = "no_recent_order", _("No order for warning_days or more")
    AOV_DROP = "aov_drop", _("At most one order in 90 days and the order value fell by aov_drop_pct or more")


RULE_DEFAULTS = {
    "dormant_after_days": 90,
    "churn_after_days": 180,
    "mature_min_orders": 3,
    "intro_churn_days": 180,
    "warning_days": 60,
    "aov_drop_pct": 50,
}
RULE_FIELDS = tuple(RULE_DEFAULTS)


class StageRules(TenantOwned):
    """The brand's current stage parameters; every change is kept in StageRulesVersion."""

    dormant_after_days = models.PositiveIntegerField(_("dormant after (days)"), default=90)
    churn_after_days = models.PositiveIntegerField(_("churned after (days)"), default=180)
    mature_min_orders = models.PositiveIntegerField(_("orders in 365 days for maturity"), default=3)
    intro_churn_days = models.PositiveIntegerField(_("churned without a first order after (days)"), default=180)
    warning_days = models.PositiveIntegerField(_("churn warning after (days)"), default=60)
    aov_drop_pct = models.PositiveIntegerField(_("order value drop for a warning (%)"), default=50)
    version = models.PositiveIntegerField(_("version"), default=0)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)
    updated_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("stage rules")
        verbose_name_plural = _("stage rules")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="stagerules_one_per_tenant")]

    def values(self):
        return {field: getattr(self, field) for field in RULE_FIELDS}


class StageRulesVersion(TenantOwned):
    version = models.PositiveIntegerField(_("version"))
    values = models.JSONField(_("new values"))
    previous = models.JSONField(_("old values"))
    changed_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    changed_by_label = models.CharField(_("changed by"), max_length=120, blank=True)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("stage rules version")
        verbose_name_plural = _("stage rules versions")
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["tenant", "version"], name="stagerulesversion_unique")]


class LifecycleRun(TenantOwned):
    class Kind(models.TextChoices):
        FULL = "full", _("Full")
        NIGHTLY = "nightly", _("Nightly")
        INCREMENTAL = "incremental", _("Incremental")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    as_of = models.DateTimeField(_("as of"))
    # The brand's local day a scheduled run belongs to: claimed once per day.
    scheduled_for = models.DateField(_("scheduled for"), null=True, blank=True)
    rules_version = models.PositiveIntegerField(_("rules version"), default=0)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    members_scored = models.PositiveIntegerField(_("members scored"), default=0)
    changes_total = models.PositiveIntegerField(_("changes"), default=0)
    changes = models.JSONField(_("changes by from→to"), default=dict, blank=True)
    warnings_raised = models.PositiveIntegerField(_("warnings raised"), default=0)
    warnings_cleared = models.PositiveIntegerField(_("warnings cleared"), default=0)
    # The highest member id that existed when the run started: members above it are new to the next run.
    max_member_id = models.BigIntegerField(default=0)
    fell_back_to_full = models.BooleanField(_("ran as a full run"), default=False)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("lifecycle run")
        verbose_name_plural = _("lifecycle runs")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "scheduled_for"], condition=Q(scheduled_for__isnull=False),
                name="lifecyclerun_one_scheduled_per_day",
            )
        ]
        indexes = [models.Index(fields=["tenant", "kind", "status", "as_of"], name="lcrun_tenant_kind_status")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.as_of:%Y-%m-%d %H:%M}"

    @property
    def duration_seconds(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class MemberLifecycle(TenantOwned):
    """A member's metrics and stage as of the last run that changed them: readable without history.

    Derived data that a full run rebuilds: no constraints to check per written row, and the tenant
    needs no index of its own (the composite indexes lead with it)."""

    tenant = models.ForeignKey(
        "scrm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_constraint=False, db_index=False
    )
    member = models.OneToOneField(
        Member, primary_key=True, on_delete=models.CASCADE, db_constraint=False, related_name="lifecycle"
    )
    # Copied from the member so that counts by store and guide read one table (the composite
    # indexes below serve them; a run rewrites tens of thousands of rows, so no index more).
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    joined_at = models.DateTimeField(_("joined at"))
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    orders_total = models.PositiveIntegerField(_("orders"), default=0)
    orders_90 = models.PositiveIntegerField(_("orders in 90 days"), default=0)
    orders_365 = models.PositiveIntegerField(_("orders in 365 days"), default=0)
    spend_total = models.DecimalField(_("spend"), max_digits=14, decimal_places=2, default=0)
    spend_90 = models.DecimalField(_("spend in 90 days"), max_digits=14, decimal_places=2, default=0)
    spend_365 = models.DecimalField(_("spend in 365 days"), max_digits=14, decimal_places=2, default=0)
    aov_90 = models.DecimalField(_("average order value, 90 days"), max_digits=14, decimal_places=2, default=0)
    aov_prev = models.DecimalField(_("average order value, 90–365 days"), max_digits=14, decimal_places=2, default=0)
    favourite_category = models.CharField(_("favourite category"), max_length=40, blank=True)
    # The store of most of the orders of the last 365 days (ties: the latest order, then the lower id).
    preferred_store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+", verbose_name=_("preferred store"),
    )
    last_interaction_at = models.DateTimeField(_("last interaction"), null=True, blank=True)
    contact_status = models.CharField(_("contact status"), max_length=24, choices=ContactStatus.choices)
    contact_changed_at = models.DateTimeField(null=True, blank=True)
    days_to_first_order = models.IntegerField(_("days to first order"), null=True, blank=True)
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices)
    rule = models.CharField(_("rule"), max_length=32, choices=Rule.choices)
    stage_since = models.DateTimeField(_("in stage since"))
    churn_warning = models.BooleanField(_("churn warning"), default=False)
    warning_rule = models.CharField(_("warning rule"), max_length=16, choices=WarningRule.choices, blank=True)
    warning_since = models.DateTimeField(_("warning since"), null=True, blank=True)
    matured_at = models.DateTimeField(_("first reached maturity"), null=True, blank=True)
    prev_stage = models.CharField(max_length=12, blank=True)
    prev_warning = models.BooleanField(default=False)
    # Not indexed: an update that leaves the stage, store, guide and dates alone can then stay on
    # its page (a HOT update) without touching any index.
    run = models.ForeignKey(
        LifecycleRun, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    as_of = models.DateTimeField(_("as of"))

    class Meta:
        verbose_name = _("member lifecycle")
        verbose_name_plural = _("member lifecycles")
        indexes = [
            models.Index(fields=["tenant", "stage", "churn_warning"], name="mlc_tenant_stage"),
            models.Index(fields=["tenant", "store", "stage"], name="mlc_tenant_store_stage"),
            models.Index(fields=["tenant", "guide", "stage"], name="mlc_tenant_guide_stage"),
            models.Index(fields=["tenant", "last_order_at"], name="mlc_tenant_last_order"),
            models.Index(fields=["tenant", "joined_at"], name="mlc_tenant_joined"),
        ]


class StageChange(TenantOwned):
    """One row per member whose stage or warning changed in a run. from_stage '' means the
    member entered the lifecycle (first scored).

    A first run writes one per member, so only the indexes the reads need: the composite ones,
    and the member's own for deleting a member."""

    tenant = models.ForeignKey(
        "scrm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_constraint=False, db_index=False
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False, related_name="stage_changes")
    run = models.ForeignKey(
        LifecycleRun, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    from_stage = models.CharField(_("from"), max_length=12, choices=Stage.choices, blank=True)
    to_stage = models.CharField(_("to"), max_length=12, choices=Stage.choices)
    from_warning = models.BooleanField(_("warning before"), default=False)
    to_warning = models.BooleanField(_("warning after"), default=False)
    at = models.DateTimeField(_("at"))
    rule = models.CharField(_("rule"), max_length=32, choices=Rule.choices)
    warning_rule = models.CharField(_("warning rule"), max_length=16, choices=WarningRule.choices, blank=True)
    metrics = models.JSONField(_("metric values"), default=dict)

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "member", "at"], name="stagechange_tenant_member"),
            models.Index(fields=["tenant", "at"], name="stagechange_tenant_at"),
            models.Index(fields=["tenant", "run"], name="stagechange_tenant_run"),
        ]

    @property
    def is_win_back(self):
        return self.from_stage in LAPSED_STAGES and self.to_stage in ACTIVE_STAGES


class DailyStageSnapshot(TenantOwned):
    """Members per stage and warning at the brand's local day of a nightly or full run."""

    day = models.DateField(_("day"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    guide = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices)
    churn_warning = models.BooleanField(_("churn warning"), default=False)
    count = models.PositiveIntegerField(_("members"))

    class Meta:
        verbose_name = _("daily stage snapshot")
        verbose_name_plural = _("daily stage snapshots")
        indexes = [models.Index(fields=["tenant", "day"], name="stagesnapshot_tenant_day")]


class PendingMember(TenantOwned):
    """The members a change-driven or incremental run re-scores; emptied when the run ends."""

    pk = models.CompositePrimaryKey("tenant_id", "run_id", "member_id")
    run_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    # Their order lines or events changed: re-read the favourite category and last interaction too.
    refresh_profile = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("member waiting to be scored")
        verbose_name_plural = _("members waiting to be scored")
