from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


def resolve_api_key(secret):
    """The active ApiKey for a secret, or None. Marks it used (at most once a minute)."""
    prefix, _sep, _rest = secret.partition(".")
    if not prefix:
        return None
    key = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not key.matches(secret):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.unscoped().filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


class ApiKeyPrincipal:
    """The caller of an API-key request: the brand's integration, with full visibility."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    staff = None

    def __init__(self, api_key):
        self.api_key = api_key
        self.pk = None

    def __str__(self):
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(self.keyword + " "):
            return None
        api_key = getattr(request._request, "api_key", None)
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ApiKeyAuthentication."""

    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": _(
                "Send `Authorization: Api-Key <key>`. Owners and operators make keys under Settings; the secret is "
                "shown once."
            ),
        }


class IsTenantStaff(permissions.BasePermission):
    """The caller belongs to a tenant: an API key, or an active staff member's session."""

    message = _("Sign in as a staff member of a brand or send an API key.")

    def has_permission(self, request, view):
        return getattr(request._request, "tenant", None) is not None and (
            request.auth is not None or getattr(request._request, "staff", None) is not None
        )


class CanManageSettings(IsTenantStaff):
    """Owners, operators and API keys may change stores, staff and keys."""

    message = _("Only owners and operators may change settings.")

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        staff = getattr(request._request, "staff", None)
        return staff is None or staff.can_manage_settings


class CanManageApiKeys(IsTenantStaff):
    """API keys open the whole brand: only owners, operators and API keys see or make them."""

    message = _("Only owners and operators may see or change API keys.")

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        staff = getattr(request._request, "staff", None)
        return staff is None or staff.can_manage_settings
