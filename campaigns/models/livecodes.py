"""Acquisition through channel live codes (渠道活码): the printed code, the guides behind it and
every join, whichever door it came through (WeCom, the mobile landing page, the API).

The printed code is ``LiveCode.code``: a random, stable token in the public URL and the QR image.
Changing the pool of guides, the rule or the caps never changes it.
"""
import secrets

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from coupons.models import Coupon, CouponTemplate
from members.models import Member
from scrm.models import Staff, Store
from scrm.tenancy import TenantOwned
from tagging.models import Tag

__all__ = ["LiveCode", "LiveCodeGuide", "LiveCodeGuideDay", "LiveCodeDay", "LiveCodeJoin", "JoinVerification"]

CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


def new_public_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


class LiveCode(TenantOwned):
    class ChannelType(models.TextChoices):
        STORE_CASHIER = "store_cashier", _("Store cashier")
        STORE_ISLAND = "store_island", _("Store display island")
        DOOR_SIGN = "door_sign", _("Door sign")
        POSTER = "poster", _("Poster")
        PARCEL_CARD = "parcel_card", _("Parcel card")
        SMS = "sms", _("SMS")
        ONLINE = "online", _("Online")
        CUSTOM = "custom", _("Custom")

    class Rule(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round-robin")
        LEAST_LOADED = "least_loaded", _("Least loaded (fewest members owned)")
        FIXED = "fixed", _("One fixed guide")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ARCHIVED = "archived", _("Archived")

    name = models.CharField(_("name"), max_length=120)
    code = models.CharField(_("printed code"), max_length=16, unique=True, default=new_public_code, editable=False)
    channel_type = models.CharField(_("channel type"), max_length=16, choices=ChannelType.choices)
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("store")
    )
    rule = models.CharField(_("assignment rule"), max_length=16, choices=Rule.choices, default=Rule.ROUND_ROBIN)
    fixed_guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("fixed guide")
    )
    backup_guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("backup guide"),
        help_text=_("Takes the joins when every guide has reached the daily cap or outside working hours."),
    )
    daily_cap = models.PositiveIntegerField(
        _("daily cap per guide"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Empty for no cap. A guide at the cap overflows to the next one."),
    )
    work_start = models.TimeField(_("working hours from"), null=True, blank=True)
    work_end = models.TimeField(_("working hours to"), null=True, blank=True)
    welcome_message = models.TextField(
        _("welcome message"), blank=True, help_text=_("Variables: {name}, {guide}, {store}, {coupon_code}.")
    )
    welcome_coupon = models.ForeignKey(
        CouponTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("welcome benefit"),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="+", verbose_name=_("tags applied on join"))
    reassign_existing = models.BooleanField(
        _("reassign members who already have a guide"), default=False,
        help_text=_("Off: a joining member who belongs to another guide keeps that guide."),
    )
    starts_at = models.DateTimeField(_("active from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("active until"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=2, null=True, blank=True)
    # Round-robin position: the pool position of the guide who took the last join.
    rr_position = models.IntegerField(default=-1, editable=False)
    # WeCom "contact way" behind the code (externalcontact/add_contact_way); its state is ``code``.
    wecom_config_id = models.CharField(max_length=64, blank=True, editable=False)
    wecom_qr_url = models.URLField(max_length=500, blank=True, editable=False)
    wecom_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Why the last sync with WeCom failed; empty once it succeeds.
    wecom_sync_error = models.CharField(max_length=500, blank=True, editable=False)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("live code")
        verbose_name_plural = _("live codes")
        indexes = [models.Index(fields=["tenant", "status"], name="livecode_tenant_status")]

    def __str__(self):
        return self.name

    @property
    def pool_guides(self):
        """The pool's guides in round-robin order (prefetch ``pool__guide`` when listing)."""
        return [entry.guide for entry in self.pool.all()]


class LiveCodeGuide(TenantOwned):
    """A guide in a live code's pool, in round-robin order."""

    live_code = models.ForeignKey(LiveCode, on_delete=models.CASCADE, related_name="pool")
    guide = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="+", verbose_name=_("guide"))
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "live_code", "guide"], name="livecode_guide_unique")
        ]


class LiveCodeGuideDay(TenantOwned):
    """Joins a guide took through a code on one local day: the daily cap is checked against it."""

    live_code = models.ForeignKey(LiveCode, on_delete=models.CASCADE, related_name="+")
    guide = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    joins = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "live_code", "guide", "day"], name="livecode_guide_day_unique")
        ]


class LiveCodeDay(TenantOwned):
    """Landing-page views of a code on one local day (joins are counted from LiveCodeJoin)."""

    live_code = models.ForeignKey(LiveCode, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "live_code", "day"], name="livecode_day_unique")]


class LiveCodeJoin(TenantOwned):
    """One join through a live code. ``key`` makes a retried join (a WeCom callback sent twice, an
    API call replayed) a no-op: the second attempt finds the first join and does nothing more."""

    class Door(models.TextChoices):
        WECOM = "wecom", _("WeCom")
        LANDING = "landing", _("Landing page")
        API = "api", _("API")

    live_code = models.ForeignKey(LiveCode, on_delete=models.CASCADE, related_name="joins")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member"))
    guide = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("guide")
    )
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("store")
    )
    door = models.CharField(_("through"), max_length=8, choices=Door.choices)
    key = models.CharField(max_length=200)
    new_member = models.BooleanField(_("new member"), default=False)
    guide_changed = models.BooleanField(default=False)
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    joined_at = models.DateTimeField(_("joined at"))

    class Meta:
        verbose_name = _("live-code join")
        verbose_name_plural = _("live-code joins")
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="livecode_join_key_unique")]
        indexes = [
            models.Index(fields=["tenant", "live_code", "joined_at"], name="livecode_join_code_time"),
            models.Index(fields=["tenant", "guide", "joined_at"], name="livecode_join_guide_time"),
            models.Index(fields=["tenant", "member"], name="livecode_join_member"),
        ]


class JoinVerification(TenantOwned):
    """A one-time code sent by SMS from the landing page; only its hash is kept."""

    live_code = models.ForeignKey(LiveCode, on_delete=models.CASCADE, related_name="+")
    mobile = models.CharField(max_length=20)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "mobile", "created_at"], name="joinverify_mobile_time")]
