"""SOP campaigns: who is enrolled when, which steps ran for them, the guide's tasks and the outbox.

Every row that an action produces carries a uniqueness key, so a step batch that runs twice, or
a worker that dies half way and is run again, never creates a second task, message or coupon:
StepRun, GuideTask: (tenant, enrolment, step); Message: (tenant, idempotency_key); coupons:
their issue key ``campaign:<c>:step:<s>:<member>``.
"""
from datetime import time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from coupons.models import Coupon, CouponTemplate
from lifecycle.models import Stage
from members.models import Member
from scrm.models import Staff, Store
from scrm.tenancy import TenantOwned
from tagging.models import Segment, Tag


def validate_encoding_aes_key(value):
    from campaigns.wecom.crypto import CryptoError, aes_key

    try:
        aes_key(value)
    except CryptoError:
        raise ValidationError(_("The EncodingAESKey is the 43 letters and digits shown by WeCom.")) from None


def _tenant_without_own_index():
    """The brand key of the high-volume campaign tables: every composite index and unique
    constraint of these tables starts with it, so it serves deleting a brand's rows and a
    separate one-column index would only be written to, row by row, by every bulk insert."""
    return models.ForeignKey("scrm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_index=False)


class OutreachSettings(TenantOwned):
    """Contact pressure across all campaigns and the brand's channel settings (one row per brand).

    Secrets are write-only: forms and the API never send them back, only whether one is set."""

    max_touches = models.PositiveSmallIntegerField(
        _("touches per member at most"), default=2, validators=[MinValueValidator(1)]
    )
    per_days = models.PositiveSmallIntegerField(_("within (days)"), default=7, validators=[MinValueValidator(1)])
    quiet_start = models.TimeField(_("quiet hours start"), default=time(21, 0))
    quiet_end = models.TimeField(_("quiet hours end"), default=time(9, 0))
    dont_disturb_days = models.PositiveSmallIntegerField(
        _("promotions skip members who bought within (days)"), default=7
    )
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=7, validators=[MinValueValidator(1)]
    )
    commission_rate = models.DecimalField(
        _("commission rate (%)"), max_digits=5, decimal_places=2, default=Decimal("3.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("Commission (业绩分佣): this share of the attributed sales is credited to the guide."),
    )
    webhook_url = models.URLField(_("webhook URL"), blank=True)
    webhook_secret = models.CharField(_("webhook signing secret"), max_length=200, blank=True)
    email_from = models.EmailField(_("email sender"), blank=True)
    sms_url = models.URLField(_("SMS gateway URL"), blank=True)
    sms_account = models.CharField(_("SMS account"), max_length=120, blank=True)
    sms_secret = models.CharField(_("SMS password or key"), max_length=200, blank=True)
    sms_signature = models.CharField(_("SMS signature"), max_length=40, blank=True)
    wecom_api_base = models.URLField(_("WeCom API address"), default="https://qyapi.weixin.qq.com")
    wecom_corp_id = models.CharField(_("WeCom corp id"), max_length=64, blank=True)
    wecom_secret = models.CharField(_("WeCom customer-contact secret"), max_length=200, blank=True)
    wecom_callback_token = models.CharField(_("WeCom callback token"), max_length=64, blank=True)
    wecom_aes_key = models.CharField(
        _("WeCom EncodingAESKey"), max_length=43, blank=True, validators=[validate_encoding_aes_key]
    )
    wecom_agent_id = models.PositiveIntegerField(
        _("WeCom application AgentId"), null=True, blank=True,
        help_text=_("The self-built application that sends alerts to staff as application messages (应用消息). "
                    "The secret above must be this application's, with customer-contact access."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    SECRET_FIELDS = ("webhook_secret", "sms_secret", "wecom_secret", "wecom_callback_token", "wecom_aes_key")

    class Meta:
        verbose_name = _("outreach settings")
        verbose_name_plural = _("outreach settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="outreachsettings_one_per_tenant")]

    def clean(self):
        if self.quiet_start == self.quiet_end:
            raise ValidationError({"quiet_end": _("Quiet hours need a different start and end.")})


class Trigger(models.TextChoices):
    STAGE_ENTERED = "stage_entered", _("Entered a stage")
    CHURN_WARNING = "churn_warning", _("Churn warning raised")
    FIRST_PURCHASE = "first_purchase", _("First purchase")
    BIRTHDAY_MONTH = "birthday_month", _("Birthday month")
    BIRTHDAY = "birthday", _("Birthday")
    JOINED_NO_PURCHASE = "joined_no_purchase", _("Joined N days ago without a purchase")
    COUPON_EXPIRING = "coupon_expiring", _("A coupon expires within N days")
    TIER_EXPIRING = "tier_expiring", _("The tier expires within N days")
    NO_PURCHASE = "no_purchase", _("No purchase for N days")
    CONTACT_DELETED = "contact_deleted", _("Deleted their guide")
    LIVE_CODE_JOINED = "live_code_joined", _("Joined through a live code")
    SURVEY_COMPLETED = "survey_completed", _("Completed a survey")
    SCHEDULE = "schedule", _("On a schedule, over the audience")


# Triggers read from a lifecycle run's stage changes; the others are checked once a local day.
RUN_TRIGGERS = (Trigger.STAGE_ENTERED, Trigger.CHURN_WARNING, Trigger.FIRST_PURCHASE)
DAYS_TRIGGERS = (Trigger.JOINED_NO_PURCHASE, Trigger.COUPON_EXPIRING, Trigger.TIER_EXPIRING, Trigger.NO_PURCHASE)


class Schedule(models.TextChoices):
    ONCE = "once", _("Once")
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every week")
    MONTHLY = "monthly", _("Every month")
    MEMBER_DAY = "member_day", _("On the member day")


class Campaign(TenantOwned):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")

    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    trigger_stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices, blank=True)
    trigger_days = models.PositiveIntegerField(_("days (N)"), null=True, blank=True)
    trigger_live_code = models.ForeignKey(
        "campaigns.LiveCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("live code"), help_text=_("Empty: a join through any live code."),
    )
    trigger_survey = models.ForeignKey(
        "campaigns.Survey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("survey"), help_text=_("Empty: any survey."),
    )
    schedule = models.CharField(_("schedule"), max_length=12, choices=Schedule.choices, blank=True)
    schedule_day = models.PositiveSmallIntegerField(
        _("day"), null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(31)],
        help_text=_("Weekly: 0 is Monday … 6 Sunday. Monthly: the day of the month."),
    )
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("segment")
    )
    audience_stages = models.JSONField(_("stages"), default=list, blank=True)
    audience_tags = models.JSONField(_("tags"), default=list, blank=True)
    audience_stores = models.JSONField(_("stores"), default=list, blank=True)
    reentry_days = models.PositiveIntegerField(
        _("may re-enter after (days)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Empty: a member enters this campaign once ever."),
    )
    exit_on_purchase = models.BooleanField(_("leave the campaign on purchase"), default=False)
    exit_on_reply = models.BooleanField(_("leave the campaign on reply"), default=False)
    # [{"key": "A", "label": "…", "weight": 45}, …]; the rest of 100 is the holdout control.
    variants = models.JSONField(_("variants"), default=list, blank=True)
    control_pct = models.PositiveSmallIntegerField(
        _("control group (%)"), default=0, validators=[MaxValueValidator(90)]
    )
    last_scheduled_on = models.DateField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "status", "trigger"], name="campaign_tenant_status")]

    def __str__(self):
        return self.name


class Action(models.TextChoices):
    GUIDE_TASK = "guide_task", _("1:1 task for the guide")
    MESSAGE = "message", _("Send a message")
    COUPON = "coupon", _("Issue a coupon")
    ADD_TAG = "add_tag", _("Add a tag")
    REMOVE_TAG = "remove_tag", _("Remove a tag")
    SURVEY = "survey", _("Send a survey")


TOUCH_ACTIONS = (Action.GUIDE_TASK, Action.MESSAGE, Action.SURVEY)


class Channel(models.TextChoices):
    WECOM = "wecom", _("WeCom")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    WEBHOOK = "webhook", _("Webhook")
    CONSOLE = "console", _("Console (log only)")


class Step(TenantOwned):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    delay_days = models.PositiveSmallIntegerField(_("day"), default=0, help_text=_("Days after enrolment."))
    action = models.CharField(_("action"), max_length=12, choices=Action.choices)
    variant = models.CharField(_("only for variant"), max_length=20, blank=True)
    promotional = models.BooleanField(
        _("promotional"), default=False, help_text=_("Skipped for members who bought recently.")
    )
    skip_if_bought = models.BooleanField(_("skip if the member bought since enrolment"), default=False)
    script = models.TextField(
        _("script or message"), blank=True,
        help_text=_("Variables: {name}, {coupon_code}, {coupon}, {favourite_category}, {guide}, {store}."),
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, blank=True)
    coupon_template = models.ForeignKey(
        CouponTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("coupon")
    )
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("tag"))
    survey = models.ForeignKey(
        "campaigns.Survey", null=True, blank=True, on_delete=models.PROTECT, related_name="steps",
        verbose_name=_("survey"),
    )
    due_hours = models.PositiveSmallIntegerField(_("task due within (hours)"), default=24, validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["tenant", "campaign", "position"], name="step_tenant_campaign")]

    def __str__(self):
        return f"{_('Day')} {self.delay_days}: {self.get_action_display()}"

    @property
    def touches(self):
        return self.action in TOUCH_ACTIONS


class Enrolment(TenantOwned):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        LEFT = "left", _("Left")

    tenant = _tenant_without_own_index()
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrolments")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    # "once" for a campaign entered once ever; the local day of entry for one that allows re-entry.
    window = models.CharField(max_length=10)
    variant = models.CharField(_("variant"), max_length=20, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    left_reason = models.CharField(_("left because"), max_length=20, blank=True)
    enrolled_at = models.DateTimeField(_("enrolled at"))
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    first_touch_at = models.DateTimeField(_("first touch"), null=True, blank=True)
    guide = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "campaign", "member", "window"], name="enrolment_unique_window")
        ]
        indexes = [
            models.Index(fields=["tenant", "campaign", "status", "enrolled_at"], name="enrolment_campaign_status"),
            models.Index(fields=["tenant", "member", "enrolled_at"], name="enrolment_member"),
        ]


class StepRun(TenantOwned):
    """What became of one step for one enrolment: done, held (tried again later) or skipped."""

    class Status(models.TextChoices):
        DONE = "done", _("Done")
        HELD = "held", _("Held")
        SKIPPED = "skipped", _("Skipped")

    class Reason(models.TextChoices):
        NONE = "", _("—")
        CONTACT_CAP = "contact_cap", _("Contact limit reached")
        QUIET_HOURS = "quiet_hours", _("Quiet hours: deferred to the morning")
        RECENT_BUYER = "recent_buyer", _("Bought recently: not disturbed")
        BOUGHT_SINCE = "bought_since", _("Bought since enrolment")
        NO_GUIDE = "no_guide", _("The member has no guide")
        NO_RECIPIENT = "no_recipient", _("No address for the channel")
        NO_COUPON = "no_coupon", _("No coupon could be issued")
        HELD_TOO_LONG = "held_too_long", _("Held too long")

    tenant = _tenant_without_own_index()
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="step_runs")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices, blank=True)
    touched = models.BooleanField(default=False)
    due_at = models.DateTimeField(_("due"))
    run_at = models.DateTimeField(_("run at"))
    next_at = models.DateTimeField(_("try again at"), null=True, blank=True)

    class Meta:
        verbose_name = _("step run")
        verbose_name_plural = _("step runs")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "enrolment", "step"], name="steprun_unique_enrolment_step")
        ]
        indexes = [
            # No other index on step or campaign: the due-step query's NOT EXISTS is to probe the
            # unique (tenant, enrolment, step) index whatever the statistics say.
            models.Index(fields=["tenant", "member", "run_at"], name="steprun_touches", condition=Q(touched=True)),
        ]


class GuideTask(TenantOwned):
    class Status(models.TextChoices):
        OPEN = "open", _("To do")
        SENT = "sent", _("Sent")
        REPLIED = "replied", _("Replied")
        BOUGHT = "bought", _("Bought")
        UNREACHABLE = "unreachable", _("Not reachable")
        SKIPPED = "skipped", _("Skipped")

    tenant = _tenant_without_own_index()
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    guide = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="+", verbose_name=_("guide"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    script = models.TextField(_("script"))
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    skip_reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"))
    due_at = models.DateTimeField(_("due"))
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)

    class Meta:
        verbose_name = _("guide task")
        verbose_name_plural = _("guide tasks")
        ordering = ["due_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "enrolment", "step"], name="guidetask_unique_enrolment_step")
        ]
        indexes = [
            models.Index(fields=["tenant", "guide", "status", "due_at"], name="guidetask_guide_status"),
            models.Index(fields=["tenant", "store", "status"], name="guidetask_store_status"),
            models.Index(fields=["tenant", "campaign", "status"], name="guidetask_campaign_status"),
        ]

    @property
    def is_open(self):
        return self.status == self.Status.OPEN


class Message(TenantOwned):
    """One outbound message in the outbox. The idempotency key (the campaign step and member, or
    the caller's) makes a retried step queue nothing twice; it is also sent to providers that
    accept one, so a retried delivery is not delivered twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed, will retry")
        DEAD = "dead", _("Dead")

    tenant = _tenant_without_own_index()
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    recipient = models.CharField(_("recipient"), max_length=200)
    sender_ref = models.CharField(_("sent on behalf of"), max_length=64, blank=True)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    last_error = models.TextField(_("last error"), blank=True)
    provider_id = models.CharField(_("provider id"), max_length=120, blank=True)
    idempotency_key = models.CharField(max_length=160)
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="message_idempotency_key_unique")
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "next_attempt_at"], name="message_tenant_status_next"),
            models.Index(fields=["tenant", "campaign", "status"], name="message_tenant_campaign"),
        ]
