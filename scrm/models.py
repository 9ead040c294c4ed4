import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .tenancy import TenantOwned


def validate_time_zone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value}) from None


class Tenant(models.Model):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    default_language = models.CharField(
        _("default language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")

    def __str__(self):
        return self.name

    @property
    def zone(self):
        return zoneinfo.ZoneInfo(self.time_zone)

    def local_now(self):
        return timezone.now().astimezone(self.zone)


class Store(TenantOwned):
    code = models.CharField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=120)
    city = models.CharField(_("city"), max_length=60, blank=True)
    region = models.CharField(_("region"), max_length=60, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="store_code_unique_per_tenant")]
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"


class Staff(TenantOwned):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        OPERATOR = "operator", _("Operator")
        STORE_MANAGER = "store_manager", _("Store manager")
        GUIDE = "guide", _("Guide")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    name = models.CharField(_("name"), max_length=80)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.GUIDE)
    stores = models.ManyToManyField(Store, blank=True, related_name="staff", verbose_name=_("stores"))
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    wecom_userid = models.CharField(_("WeCom user id"), max_length=64, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        ordering = ["name"]
        indexes = [models.Index(fields=["tenant", "role"], name="staff_tenant_role")]

    def __str__(self):
        return self.name

    @property
    def username(self):
        return self.user.get_username()

    @property
    def sees_all_members(self):
        return self.role in (self.Role.OWNER, self.Role.OPERATOR)

    @property
    def can_manage_settings(self):
        return self.role in (self.Role.OWNER, self.Role.OPERATOR)


def _hash_key(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(TenantOwned):
    PREFIX_LENGTH = 8

    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self):
        return self.revoked_at is None

    @classmethod
    def generate(cls, tenant, name, created_by=None):
        """Create a key; the returned secret is shown once and never stored."""
        prefix = secrets.token_hex(cls.PREFIX_LENGTH // 2)
        secret = f"{prefix}.{secrets.token_urlsafe(32)}"
        key = cls.objects.unscoped().create(
            tenant=tenant, name=name, prefix=prefix, hashed_key=_hash_key(secret), created_by=created_by
        )
        return key, secret

    def matches(self, secret):
        return secrets.compare_digest(self.hashed_key, _hash_key(secret))


class IdempotencyRecord(TenantOwned):
    """The first answer to a request sent with an Idempotency-Key, replayed on a retry."""

    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "scope", "key"], name="idempotency_key_unique_per_tenant")
        ]
