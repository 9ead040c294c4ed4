import calendar
import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import Staff, Store
from scrm.tenancy import TenantOwned

_MOBILE_JUNK = re.compile(r"[\s\-()（）.]")


def normalise_mobile(raw):
    """'+86 138-0013-8000' -> '13800138000'. Returns '' for blank; raises ValueError for junk."""
    if raw is None:
        return ""
    value = _MOBILE_JUNK.sub("", str(raw))
    if not value:
        return ""
    if value.startswith("+"):
        value = value[1:]
        if value.startswith("86") and len(value) == 13:
            value = value[2:]
        elif not value.isdigit():
            raise ValueError(raw)
        else:
            return "+" + value
    elif value.startswith("0086") and len(value) == 15:
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not value.isdigit() or not (6 <= len(value) <= 15):
        raise ValueError(raw)
    if len(value) == 11 and value.startswith("1") and value[1] not in "3456789":
        raise ValueError(raw)
    return value


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")


class ContactStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    DELETED_BY_CUSTOMER = "deleted_by_customer", _("Deleted by customer")
    REMOVED_BY_GUIDE = "removed_by_guide", _("Removed by guide")


class Member(TenantOwned):
    external_id = models.CharField(_("external id"), max_length=64)
    name = models.CharField(_("name"), max_length=80, blank=True)
    mobile = models.CharField(_("mobile"), max_length=20, null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    city = models.CharField(_("city"), max_length=60, blank=True)
    joined_at = models.DateTimeField(_("joined at"))
    source_channel = models.CharField(_("source channel"), max_length=40, blank=True)
    home_store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("home store")
    )
    owner_guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("guide")
    )
    wecom_external_userid = models.CharField(_("WeCom external user id"), max_length=64, null=True, blank=True)
    contact_status = models.CharField(
        _("contact status"), max_length=24, choices=ContactStatus.choices, default=ContactStatus.ACTIVE
    )
    contact_status_changed_at = models.DateTimeField(_("contact status changed at"), null=True, blank=True)
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="member_external_id_unique"),
            models.UniqueConstraint(fields=["tenant", "mobile"], name="member_mobile_unique"),
            models.UniqueConstraint(fields=["tenant", "wecom_external_userid"], name="member_wecom_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "home_store"], name="member_tenant_store"),
            models.Index(fields=["tenant", "owner_guide"], name="member_tenant_guide"),
            models.Index(fields=["tenant", "joined_at"], name="member_tenant_joined"),
            models.Index(fields=["tenant", "contact_status_changed_at"], name="member_tenant_contact_chg"),
            models.Index(fields=["tenant", "name"], name="member_tenant_name"),
        ]

    def __str__(self):
        return self.name or self.external_id

    @property
    def masked_mobile(self):
        if not self.mobile or len(self.mobile) < 7:
            return self.mobile or ""
        return f"{self.mobile[:3]}****{self.mobile[-4:]}"


class Order(TenantOwned):
    class Status(models.TextChoices):
        PAID = "paid", _("Paid")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")

    external_id = models.CharField(_("external id"), max_length=64)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders", verbose_name=_("member")
    )
    member_external_id = models.CharField(_("member external id"), max_length=64, blank=True)
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("store"))
    guide = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("guide"))
    placed_at = models.DateTimeField(_("placed at"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PAID)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    discount = models.DecimalField(_("discount"), max_digits=12, decimal_places=2, default=0)
    refunded_amount = models.DecimalField(_("refunded amount"), max_digits=12, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [models.UniqueConstraint(fields=["tenant", "external_id"], name="order_external_id_unique")]
        indexes = [
            models.Index(fields=["tenant", "member", "placed_at"], name="order_tenant_member_placed"),
            models.Index(fields=["tenant", "placed_at"], name="order_tenant_placed"),
            models.Index(fields=["tenant", "updated_at"], name="order_tenant_updated"),
            models.Index(fields=["tenant", "store", "placed_at"], name="order_tenant_store_placed"),
            models.Index(
                fields=["tenant", "member_external_id"], name="order_unbound_ext", condition=Q(member__isnull=True)
            ),
            models.Index(fields=["tenant", "mobile"], name="order_unbound_mobile", condition=Q(member__isnull=True)),
        ]

    def __str__(self):
        return self.external_id

    @property
    def net_amount(self):
        return self.total - self.refunded_amount

    def clean(self):
        if self.refunded_amount and self.refunded_amount > self.total:
            raise ValidationError({"refunded_amount": _("Cannot be more than the total.")})


class OrderLine(TenantOwned):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=120, blank=True)
    category = models.CharField(_("category"), max_length=40, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        indexes = [
            models.Index(fields=["tenant", "order"], name="orderline_tenant_order"),
            # Covers what the favourite category and spend shares read of a member's lines (index-only).
            models.Index(fields=["order", "category", "sku", "amount"], name="orderline_order_cat_sku_amt"),
        ]


class EventType(models.TextChoices):
    MESSAGE_READ = "message_read", _("Message read")
    MESSAGE_REPLIED = "message_replied", _("Message replied")
    GROUP_JOINED = "group_joined", _("Joined a group")
    GROUP_LEFT = "group_left", _("Left a group")
    CONTACT_ADDED = "contact_added", _("Added the guide")
    CONTACT_DELETED = "contact_deleted", _("Deleted the guide")
    COUPON_CLAIMED = "coupon_claimed", _("Claimed a coupon")
    SURVEY_COMPLETED = "survey_completed", _("Completed a survey")
    SIGN_IN = "sign_in", _("Signed in")
    PAGE_VIEW = "page_view", _("Viewed a page")
    CUSTOM = "custom", _("Custom")


class Event(TenantOwned):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="events", verbose_name=_("member"))
    type = models.CharField(_("type"), max_length=24, choices=EventType.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [models.UniqueConstraint(fields=["tenant", "external_id"], name="event_external_id_unique")]
        indexes = [
            models.Index(fields=["tenant", "member", "occurred_at"], name="event_tenant_member_occurred"),
            models.Index(fields=["tenant", "type", "occurred_at"], name="event_tenant_type_occurred"),
            models.Index(fields=["tenant", "created_at"], name="event_tenant_created"),
        ]


class ImportJob(TenantOwned):
    """A CSV import: streamed in batches, each batch and the resume point committed together."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("Members")
        ORDERS = "orders", _("Orders")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    file_name = models.CharField(_("file"), max_length=255)
    file_path = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("unchanged"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    errors = models.JSONField(_("row errors"), default=list, blank=True)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "file_sha256", "kind"], name="importjob_tenant_file")]

    @property
    def progress_pct(self):
        if not self.total_rows:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, round(100 * self.rows_done / self.total_rows))


# ---------------------------------------------------------------- points and tiers

class PointsRules(TenantOwned):
    """How members earn points (one row per brand; defaults apply until it is saved)."""

    class Expiry(models.TextChoices):
        NEVER = "never", _("Points never expire")
        END_OF_NEXT_YEAR = "end_of_next_year", _("Points earned in a year expire at the end of the next year")

    points_per_yuan = models.DecimalField(
        _("points per ¥1 spent"), max_digits=6, decimal_places=2, default=1, validators=[MinValueValidator(0)]
    )
    sign_in_points = models.PositiveIntegerField(_("points for a daily sign-in"), default=5)
    streak_days = models.PositiveIntegerField(
        _("streak length"), default=7, validators=[MinValueValidator(2)],
        help_text=_("Every this many days signed in without a break earns the streak bonus."),
    )
    streak_bonus = models.PositiveIntegerField(_("streak bonus"), default=20)
    expiry = models.CharField(_("expiry"), max_length=20, choices=Expiry.choices, default=Expiry.NEVER)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("points rules")
        verbose_name_plural = _("points rules")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="pointsrules_one_per_tenant")]


class PointsAccount(TenantOwned):
    """The running balance of one member: always the sum of their ledger, moved in the same
    transaction as each entry, and the row every points write locks first."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="points_account")
    balance = models.IntegerField(_("balance"), default=0)
    last_sign_in_on = models.DateField(_("last sign-in"), null=True, blank=True)
    sign_in_streak = models.PositiveIntegerField(_("sign-in streak"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [models.UniqueConstraint(fields=["tenant", "member"], name="pointsaccount_member_unique")]


class PointsEntry(TenantOwned):
    """One line of the append-only points ledger. ``key`` makes a write idempotent (an order earns
    once, a member signs in once a day)."""

    class Kind(models.TextChoices):
        ORDER = "order", _("Order")
        REFUND = "refund", _("Refund")
        SIGN_IN = "sign_in", _("Daily sign-in")
        ACTIVITY = "activity", _("Activity")
        ADJUSTMENT = "adjustment", _("Manual adjustment")
        EXCHANGE = "exchange", _("Exchange")
        LOTTERY = "lottery", _("Lottery")
        FLASH_SALE = "flash_sale", _("Flash sale")
        CASH_OFF = "cash_off", _("Cash off")
        EXPIRY = "expiry", _("Expiry")

    SPENDING = (Kind.EXCHANGE, Kind.LOTTERY, Kind.FLASH_SALE, Kind.CASH_OFF)

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="points_entries", verbose_name=_("member"))
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    points = models.IntegerField(_("points"))
    balance_after = models.IntegerField(_("balance after"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("order"))
    key = models.CharField(max_length=160, null=True, blank=True)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    occurred_at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points ledger")
        ordering = ["-occurred_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="pointsentry_key_unique")]
        indexes = [
            models.Index(fields=["tenant", "member", "occurred_at"], name="pointsentry_member_time"),
            models.Index(fields=["tenant", "order"], name="pointsentry_tenant_order"),
            models.Index(fields=["tenant", "kind", "occurred_at"], name="pointsentry_kind_time"),
        ]


class TierSettings(TenantOwned):
    """What tiers are measured by and how long a reached tier holds (one row per brand)."""

    class Basis(models.TextChoices):
        SPEND = "spend", _("Spend in the last 12 months")
        POINTS = "points", _("Points earned in the last 12 months")

    basis = models.CharField(_("tier basis"), max_length=10, choices=Basis.choices, default=Basis.SPEND)
    hold_days = models.PositiveIntegerField(
        _("tier holds for (days)"), default=365, validators=[MinValueValidator(1)],
        help_text=_("A reached tier is kept this long even if the member qualifies for less."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tier settings")
        verbose_name_plural = _("tier settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="tiersettings_one_per_tenant")]


class Tier(TenantOwned):
    name = models.CharField(_("name"), max_length=60)
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("Higher is better; 1 is the entry tier."))
    threshold = models.DecimalField(
        _("threshold"), max_digits=12, decimal_places=2, default=0, validators=[MinValueValidator(0)],
        help_text=_("Spend (¥) or points in the last 12 months needed to reach the tier."),
    )
    benefits = models.TextField(_("benefits"), blank=True)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["rank"]
        constraints = [models.UniqueConstraint(fields=["tenant", "rank"], name="tier_rank_unique_per_tenant")]

    def __str__(self):
        return self.name


class MemberTier(TenantOwned):
    """A member's current tier, until when it holds, and their paid membership."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="tier_status")
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("tier"))
    qualifying_value = models.DecimalField(_("qualifying value"), max_digits=14, decimal_places=2, default=0)
    reached_at = models.DateTimeField(_("reached at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("tier expires at"), null=True, blank=True)
    paid_member = models.BooleanField(_("paid membership"), default=False)
    paid_until = models.DateField(_("paid membership until"), null=True, blank=True)
    evaluated_at = models.DateTimeField(_("evaluated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        constraints = [models.UniqueConstraint(fields=["tenant", "member"], name="membertier_member_unique")]
        indexes = [
            models.Index(fields=["tenant", "tier"], name="membertier_tenant_tier"),
            models.Index(fields=["tenant", "expires_at"], name="membertier_tenant_expires"),
        ]


class TierChange(TenantOwned):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    qualifying_value = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-changed_at", "-pk"]
        indexes = [
            models.Index(fields=["tenant", "changed_at"], name="tierchange_tenant_time"),
            models.Index(fields=["tenant", "member", "changed_at"], name="tierchange_member_time"),
        ]


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class MemberDay(TenantOwned):
    """A recurring member day (会员日): a day of every month, or a weekday every week."""

    name = models.CharField(_("name"), max_length=60)
    day_of_month = models.PositiveSmallIntegerField(
        _("day of the month"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text=_("E.g. 18 for the 18th; in shorter months the last day stands in."),
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), null=True, blank=True, choices=Weekday.choices)
    benefits = models.TextField(_("benefits"), blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("member day")
        verbose_name_plural = _("member days")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(day_of_month__isnull=False) | Q(weekday__isnull=False), name="memberday_has_a_day"
            )
        ]

    def __str__(self):
        return self.name

    def falls_on(self, day):
        if self.weekday is not None and day.weekday() == self.weekday:
            return True
        if self.day_of_month is not None:
            last = calendar.monthrange(day.year, day.month)[1]
            return day.day == min(self.day_of_month, last)
        return False
