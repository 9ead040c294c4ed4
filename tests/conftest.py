import pytest
from rest_framework.test import APIClient

from scrm.celery import app as celery_app
from scrm.models import Staff, Store
from scrm.services import create_staff, create_tenant
from scrm.tenancy import tenant_context

# Tasks run in-process in tests, whatever the broker: a test asserts what the task did.
celery_app.conf.task_always_eager = True
celery_app.conf.task_eager_propagates = True

PASSWORD = "correct-horse-42"


class Brand:
    """A tenant with an owner, an API key, two stores, a store manager and two guides."""

    def __init__(self, slug):
        self.tenant, self.owner, self.api_key = create_tenant(slug, slug.title(), f"{slug}_owner", PASSWORD)
        with tenant_context(self.tenant):
            self.store = Store.objects.create(tenant=self.tenant, code=f"{slug.upper()}-01", name=f"{slug} store 1", city="上海")
            self.store2 = Store.objects.create(tenant=self.tenant, code=f"{slug.upper()}-02", name=f"{slug} store 2", city="杭州")
        self.manager = create_staff(self.tenant, f"{slug}_manager", PASSWORD, "店长", Staff.Role.STORE_MANAGER, [self.store])
        self.guide = create_staff(self.tenant, f"{slug}_guide", PASSWORD, "导购甲", Staff.Role.GUIDE, [self.store])
        self.guide2 = create_staff(self.tenant, f"{slug}_guide2", PASSWORD, "导购乙", Staff.Role.GUIDE, [self.store2])
        self.operator = create_staff(self.tenant, f"{slug}_operator", PASSWORD, "运营", Staff.Role.OPERATOR)

    def api(self):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.api_key}")
        return client

    def session(self, staff):
        client = APIClient()
        client.force_login(staff.user)
        return client

    def scope(self):
        return tenant_context(self.tenant)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Every brand makes five logins; the production hasher would spend seconds per test on them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def brand(db):
    return Brand("acme")


@pytest.fixture
def other_brand(db):
    return Brand("rival")


@pytest.fixture
def in_brand(brand):
    with brand.scope():
        yield brand
