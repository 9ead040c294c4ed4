from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from scrm.models import ApiKey, Staff, Tenant
from scrm.tenancy import tenant_context


def create(slug="bloom", owner="bloom_owner", password="a-long-password", *extra):
    out = StringIO()
    call_command("create_tenant", slug, "--name", "Bloom 花田", "--owner", owner, "--password", password, *extra, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
class TestCreateTenant:
    def test_it_prints_a_working_api_key_as_its_last_line(self):
        lines = create()
        assert lines[-1].startswith("API key: ")
        secret = lines[-1][len("API key: "):]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        response = client.get("/api/v1/members/")
        assert response.status_code == 200
        assert response.json()["results"] == []

    def test_the_tenant_has_an_owner_who_can_log_in(self):
        create()
        tenant = Tenant.objects.get(slug="bloom")
        assert tenant.name == "Bloom 花田"
        with tenant_context(tenant):
            owner = Staff.objects.get()
        assert owner.role == Staff.Role.OWNER
        assert APIClient().login(username="bloom_owner", password="a-long-password")

    def test_it_makes_one_key_stored_hashed_with_its_prefix_visible(self):
        secret = create()[-1][len("API key: "):]
        tenant = Tenant.objects.get(slug="bloom")
        with tenant_context(tenant):
            key = ApiKey.objects.get()
        assert secret.startswith(key.prefix + ".")
        assert secret not in (key.hashed_key, key.name, key.prefix)
        assert key.matches(secret)

    def test_the_key_sees_only_its_own_tenant(self, brand):
        secret = create()[-1][len("API key: "):]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        codes = {row["code"] for row in client.get("/api/v1/stores/").json()["results"]}
        assert brand.store.code not in codes

    def test_it_takes_a_time_zone_and_a_language(self):
        create("bloom", "bloom_owner", "a-long-password", "--time-zone", "Asia/Tokyo", "--language", "en")
        tenant = Tenant.objects.get(slug="bloom")
        assert (tenant.time_zone, tenant.default_language) == ("Asia/Tokyo", "en")

    def test_a_taken_slug_or_username_is_refused_and_nothing_is_made(self):
        create()
        with pytest.raises(CommandError, match="bloom"):
            create("bloom", "someone_else")
        with pytest.raises(CommandError, match="bloom_owner"):
            create("other", "bloom_owner")
        assert Tenant.objects.count() == 1
