"""Tenant scope that fails closed.

The current tenant lives in one context variable. It is set once per request (from the
session's staff member or the API key) by ``TenantMiddleware`` and once per task by
``tenant_context(tenant_id)``. Tenant-owned managers filter by it and raise when none is set;
code that must see every tenant says so with ``Model.objects.unscoped()``.
"""
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django.db.models import F
from django.db.models.lookups import Exact

_current_tenant = ContextVar("scrm_current_tenant", default=None)


class TenantNotSet(RuntimeError):
    """A tenant-owned table was queried with no tenant in scope."""


def get_current_tenant():
    return _current_tenant.get()


def require_tenant():
    tenant = _current_tenant.get()
    if tenant is None:
        raise TenantNotSet("No tenant in scope: wrap the work in tenant_context() or use .unscoped().")
    return tenant


@contextmanager
def tenant_context(tenant):
    """Run a block with ``tenant`` (a Tenant or its id) in scope."""
    from scrm.models import Tenant

    if not isinstance(tenant, Tenant):
        tenant = Tenant.objects.get(pk=tenant)
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


class CurrentTenantId(models.Expression):
    """The current tenant's id, read when the SQL is compiled, not when the queryset is built.

    So a queryset may be declared at import time (a form field's choices, a filter's queryset)
    and is scoped to whichever tenant is in scope when it runs; with none in scope, compiling
    it raises TenantNotSet: the scope fails closed on every path that reaches the database.
    """

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection):
        return "%s", [require_tenant().pk]


class TenantQuerySet(models.QuerySet):
    pass


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of every tenant-owned model: scoped to the current tenant."""

    def get_queryset(self):
        return super().get_queryset().filter(Exact(F("tenant_id"), CurrentTenantId()))

    def unscoped(self):
        return super().get_queryset()


class TenantOwned(models.Model):
    tenant = models.ForeignKey("scrm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False)

    objects = TenantManager()

    class Meta:
        abstract = True
        base_manager_name = None

    def save(self, *args, **kwargs):
        if self.tenant_id is None:
            self.tenant = require_tenant()
        super().save(*args, **kwargs)


class TenantMiddleware:
    """Resolve the tenant once per request and keep it in scope until the response is built."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from scrm.auth import resolve_api_key

        request.tenant = None
        request.staff = None
        request.api_key = None
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.startswith("Api-Key "):
            api_key = resolve_api_key(header[len("Api-Key "):].strip())
            if api_key is not None:
                request.api_key = api_key
                request.tenant = api_key.tenant
        elif request.user.is_authenticated:
            staff = getattr(request.user, "staff", None)
            if staff is not None and staff.active:
                request.staff = staff
                request.tenant = staff.tenant
        token = _current_tenant.set(request.tenant)
        try:
            return self.get_response(request)
        finally:
            _current_tenant.reset(token)
