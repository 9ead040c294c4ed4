from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import Staff, Store
from scrm.tenancy import TenantOwned

CENT = Decimal("0.01")

# 31 letters and digits that cannot be mistaken for each other when read out at a till
# (no 0/O, 1/I/L); 10 of them give about 5 * 10**14 codes, so guessing one is hopeless.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10


def normalise_code(raw):
    """'abcde-fghjk ' -> 'ABCDEFGHJK': what a clerk types, as stored."""
    return "".join(ch for ch in str(raw or "").upper() if ch.isalnum())


def format_code(code):
    """'ABCDEFGHJK' -> 'ABCDE-FGHJK': easier to read aloud."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}" if len(code) > 6 else code


def local_midnight(day, zone):
    return datetime.combine(day, time.min, tzinfo=zone)


class CouponTemplate(TenantOwned):
    class Type(models.TextChoices):
        CASH_OFF = "cash_off", _("Cash off")
        DISCOUNT = "discount", _("Discount")
        GIFT = "gift", _("Spend and get a gift")
        BUY_ONE_GET_ONE = "buy_one_get_one", _("Buy one get one")

    class Validity(models.TextChoices):
        FIXED = "fixed", _("Fixed dates")
        DAYS = "days", _("Days from issue")

    name = models.CharField(_("name"), max_length=120)
    type = models.CharField(_("type"), max_length=20, choices=Type.choices)
    description = models.TextField(_("description"), blank=True)
    amount = models.DecimalField(
        _("amount off"), max_digits=12, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(CENT)], help_text=_("For cash-off coupons, e.g. 66.00."),
    )
    threshold = models.DecimalField(
        _("threshold"), max_digits=12, decimal_places=2, default=0, validators=[MinValueValidator(0)],
        help_text=_("The order must reach this amount; 0 means no threshold."),
    )
    discount_rate = models.DecimalField(
        _("discount rate"), max_digits=3, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(CENT), MaxValueValidator(Decimal("0.99"))],
        help_text=_("Share of the price paid, e.g. 0.80 for 20% off (八折)."),
    )
    discount_cap = models.DecimalField(
        _("discount cap"), max_digits=12, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(CENT)], help_text=_("Most a discount coupon takes off; empty for no cap."),
    )
    gift = models.CharField(_("gift"), max_length=120, blank=True, help_text=_("The item given, for gift coupons."))
    stores = models.ManyToManyField(
        Store, blank=True, related_name="+", verbose_name=_("stores"),
        help_text=_("Redeemable only in these stores; none chosen means every store."),
    )
    categories = models.JSONField(
        _("categories"), default=list, blank=True,
        help_text=_("Redeemable only on orders with these product categories; empty means all."),
    )
    validity = models.CharField(_("validity"), max_length=10, choices=Validity.choices, default=Validity.DAYS)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True, help_text=_("The last day it can be used."))
    valid_days = models.PositiveIntegerField(
        _("valid days"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Days it can be used, counting the day of issue."),
    )
    total_stock = models.PositiveIntegerField(
        _("total stock"), null=True, blank=True, help_text=_("Most coupons ever issued; empty for no limit.")
    )
    issued_count = models.PositiveIntegerField(_("issued"), default=0, editable=False)
    per_member_limit = models.PositiveIntegerField(
        _("limit per member"), null=True, blank=True, default=1, validators=[MinValueValidator(1)],
        help_text=_("Most coupons of this template one member may hold; empty for no limit."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "active"], name="coupontemplate_tenant_active")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_stock__isnull=True) | Q(issued_count__lte=models.F("total_stock")),
                name="coupontemplate_no_oversell",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def remaining_stock(self):
        return None if self.total_stock is None else max(0, self.total_stock - self.issued_count)

    def clean(self):
        errors = {}
        if self.type == self.Type.CASH_OFF and not self.amount:
            errors["amount"] = _("A cash-off coupon needs the amount it takes off.")
        if self.type == self.Type.DISCOUNT and not self.discount_rate:
            errors["discount_rate"] = _("A discount coupon needs its rate, e.g. 0.80.")
        if self.type == self.Type.GIFT and not self.gift:
            errors["gift"] = _("Say which item is given.")
        if self.validity == self.Validity.FIXED:
            if not self.valid_from or not self.valid_until:
                errors["valid_until"] = _("Fixed dates need both the first and the last day.")
            elif self.valid_until < self.valid_from:
                errors["valid_until"] = _("The last day is before the first day.")
        elif not self.valid_days:
            errors["valid_days"] = _("Say for how many days a coupon can be used.")
        if self.total_stock is not None and self.pk and self.total_stock < self.issued_count:
            errors["total_stock"] = _("%(n)d coupons are already issued; the stock cannot be lower.") % {
                "n": self.issued_count
            }
        if errors:
            raise ValidationError(errors)

    def window_for(self, issued_at, zone):
        """(valid_from, expires_at) of a coupon issued at ``issued_at``: whole days in the tenant's zone,
        expiring at the midnight that ends the last day."""
        if self.validity == self.Validity.FIXED:
            return local_midnight(self.valid_from, zone), local_midnight(self.valid_until + timedelta(days=1), zone)
        first_day = issued_at.astimezone(zone).date()
        return issued_at, local_midnight(first_day + timedelta(days=self.valid_days), zone)

    def benefit_for(self, amount):
        """What the coupon takes off an order of ``amount`` (gifts and buy-one-get-one: nothing off the bill)."""
        if self.type == self.Type.CASH_OFF:
            return min(amount, self.amount)
        if self.type == self.Type.DISCOUNT:
            off = (amount * (1 - self.discount_rate)).quantize(CENT, rounding=ROUND_HALF_UP)
            return min(off, self.discount_cap) if self.discount_cap is not None else off
        return Decimal("0.00")

    def summary(self):
        if self.type == self.Type.CASH_OFF:
            text = _("¥%(amount)s off") % {"amount": self.amount}
        elif self.type == self.Type.DISCOUNT:
            text = _("pay %(rate)s%% of the price") % {"rate": int(self.discount_rate * 100)}
            if self.discount_cap is not None:
                text += _(", at most ¥%(cap)s off") % {"cap": self.discount_cap}
        elif self.type == self.Type.GIFT:
            text = _("gift: %(gift)s") % {"gift": self.gift}
        else:
            text = _("buy one get one")
        if self.threshold:
            text = _("spend ¥%(threshold)s, %(benefit)s") % {"threshold": self.threshold, "benefit": text}
        return text


class Coupon(TenantOwned):
    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        CLAIMED = "claimed", _("Claimed")
        REDEEMED = "redeemed", _("Redeemed")
        EXPIRED = "expired", _("Expired")
        VOIDED = "voided", _("Voided")

    class Source(models.TextChoices):
        CAMPAIGN = "campaign", _("Campaign step")
        LIVE_CODE = "live_code", _("Live-code welcome")
        MANUAL = "manual", _("Manual")
        API = "api", _("API")

    USABLE = (Status.ISSUED, Status.CLAIMED)

    code = models.CharField(_("code"), max_length=16)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("template"))
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="coupons", verbose_name=_("member"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ISSUED)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MANUAL)
    source_ref = models.CharField(_("source reference"), max_length=120, blank=True)
    campaign_id = models.PositiveBigIntegerField(_("campaign"), null=True, blank=True)
    # A retry of the same issue (a campaign step for one member) finds this key and issues nothing.
    issue_key = models.CharField(max_length=160, null=True, blank=True, editable=False)
    # Who the member belonged to when the coupon was issued: results are credited to them.
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("store"))
    guide = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("guide"))
    issued_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    issued_at = models.DateTimeField(_("issued at"))
    valid_from = models.DateTimeField(_("valid from"))
    expires_at = models.DateTimeField(_("expires at"))
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    order_external_id = models.CharField(_("order"), max_length=64, blank=True)
    order_amount = models.DecimalField(_("order amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    benefit_amount = models.DecimalField(_("amount off"), max_digits=12, decimal_places=2, null=True, blank=True)
    redeemed_store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("redeemed in store")
    )
    redeemed_guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("redeemed by guide")
    )
    unredeemed_at = models.DateTimeField(_("redemption undone at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.CharField(_("reason"), max_length=200, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="coupon_code_unique_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "issue_key"], name="coupon_issue_key_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "template"], name="coupon_tenant_member_tpl"),
            models.Index(fields=["tenant", "template", "status"], name="coupon_tenant_tpl_status"),
            models.Index(fields=["tenant", "status", "expires_at"], name="coupon_tenant_status_expiry"),
            models.Index(fields=["tenant", "order_external_id"], name="coupon_tenant_order"),
            models.Index(fields=["tenant", "campaign_id"], name="coupon_tenant_campaign"),
            # The coupons issued and redeemed in a recent period (the dashboard's figures).
            models.Index(fields=["tenant", "issued_at"], name="coupon_tenant_issued"),
            models.Index(fields=["tenant", "redeemed_at"], name="coupon_tenant_redeemed", condition=Q(redeemed_at__isnull=False)),
        ]

    def __str__(self):
        return self.display_code

    @property
    def display_code(self):
        return format_code(self.code)
