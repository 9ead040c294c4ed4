import pytest
from django.conf import settings

from members.models import Member
from scrm.celery import app as celery_app
from scrm.models import Store
from scrm.tenancy import TenantNotSet, get_current_tenant, tenant_context


def test_a_tenant_owned_query_without_a_tenant_in_scope_raises(db):
    with pytest.raises(TenantNotSet):
        list(Store.objects.all())


def test_unscoped_sees_every_tenant_by_name(brand, other_brand):
    assert Store.objects.unscoped().filter(tenant__in=[brand.tenant, other_brand.tenant]).count() == 4


def test_a_scoped_query_sees_only_the_current_tenants_rows(brand, other_brand):
    with brand.scope():
        codes = set(Store.objects.values_list("code", flat=True))
    assert codes == {brand.store.code, brand.store2.code}


def test_the_tenant_is_reset_after_the_block_even_on_error(brand):
    with pytest.raises(ZeroDivisionError):
        with brand.scope():
            1 / 0
    assert get_current_tenant() is None


def test_tenant_context_takes_an_id_as_tasks_do(brand):
    with tenant_context(brand.tenant.pk) as tenant:
        assert tenant == brand.tenant
        assert Member.objects.count() == 0


def test_saving_a_row_without_a_tenant_takes_the_one_in_scope(brand):
    with brand.scope():
        store = Store.objects.create(code="NEW", name="New")
    assert store.tenant_id == brand.tenant.pk


def test_celery_is_set_for_at_least_once_work():
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    routes = celery_app.conf.task_routes
    assert routes["lifecycle.tasks.*"]["queue"] == "scoring"
    assert routes["campaigns.tasks.*"]["queue"] == "outreach"
    assert routes["members.tasks.*"]["queue"] == "ingest"


def test_a_queryset_built_without_a_tenant_runs_in_the_tenant_in_scope_when_evaluated(brand, other_brand):
    stores = Store.objects.filter(active=True)
    with pytest.raises(TenantNotSet):
        list(stores)
    with other_brand.scope():
        assert {s.tenant_id for s in stores.all()} == {other_brand.tenant.pk}


def test_a_scoped_queryset_used_as_a_subquery_is_scoped_too(brand, other_brand):
    with brand.scope():
        Member.objects.create(external_id="M1", joined_at="2025-01-01T00:00:00Z", home_store=brand.store)
    with other_brand.scope():
        Member.objects.create(external_id="M1", joined_at="2025-01-01T00:00:00Z", home_store=other_brand.store)
        in_scope = Member.objects.unscoped().filter(home_store__in=Store.objects.all())
        assert [m.tenant_id for m in in_scope] == [other_brand.tenant.pk]
