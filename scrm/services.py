from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .models import ApiKey, Staff, Tenant
from .tenancy import tenant_context


@transaction.atomic
def create_tenant(slug, name, owner_username, owner_password, time_zone="Asia/Shanghai", language="zh-hans"):
    """A brand with its owner login and a first API key. Returns (tenant, owner, api_key_secret)."""
    tenant = Tenant.objects.create(slug=slug, name=name, time_zone=time_zone, default_language=language)
    owner = create_staff(tenant, owner_username, owner_password, name=owner_username, role=Staff.Role.OWNER)
    _key, secret = ApiKey.generate(tenant, "default", created_by=owner)
    return tenant, owner, secret


@transaction.atomic
def create_staff(tenant, username, password, name, role, stores=(), mobile="", wecom_userid="", active=True, email=""):
    user = get_user_model().objects.create_user(username=username, password=password, is_active=active, email=email or "")
    with tenant_context(tenant):
        staff = Staff.objects.create(
            tenant=tenant, user=user, name=name or username, role=role, mobile=mobile, wecom_userid=wecom_userid,
            active=active,
        )
        if stores:
            staff.stores.set(stores)
    return staff


@transaction.atomic
def update_staff(staff, password=None, stores=None, email=None, **fields):
    for field, value in fields.items():
        setattr(staff, field, value)
    staff.save()
    if stores is not None:
        staff.stores.set(stores)
    user = staff.user
    user_changed = []
    if password:
        user.set_password(password)
        user_changed.append("password")
    if email is not None and email != user.email:
        user.email = email
        user_changed.append("email")
    if user.is_active != staff.active:
        user.is_active = staff.active
        user_changed.append("is_active")
    if user_changed:
        user.save(update_fields=user_changed)
    return staff


def revoke_api_key(api_key):
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
