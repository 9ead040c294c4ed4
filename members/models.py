import re

from django.core.exceptions import ValidationError
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
        indexes = [models.Index(fields=["tenant", "order"], name="orderline_tenant_order")]


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
