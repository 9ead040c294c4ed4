import pytest
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from scrm.models import ApiKey
from tests.api_cases import CreateCases, ListCases, RetrieveCases, assert_error, patch_json, post_json

KEY_FIELDS = ("name", "prefix", "active", "created_at", "last_used_at", "revoked_at")


def make_keys(brand, names):
    return [ApiKey.generate(brand.tenant, name)[0] for name in names]


def client_with(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client


def stored_key(brand, pk):
    with brand.scope():
        return ApiKey.objects.get(pk=pk)


@pytest.mark.django_db
class TestApiKeysEndpoint(ListCases, RetrieveCases, CreateCases):
    url = "/api/v1/api-keys/"
    model = ApiKey
    contract_fields = KEY_FIELDS
    list_queries = 3  # the API key, the count and the page

    def make(self, brand, count):
        return make_keys(brand, [f"key {i}" for i in range(count)])

    def make_more(self, brand, count):
        return make_keys(brand, [f"more {i}" for i in range(count)])

    def create_payload(self, brand):
        return {"name": "POS"}


@pytest.mark.django_db
class TestApiKeys:
    def test_the_secret_is_shown_once_and_works(self, brand):
        created = post_json(brand.api(), "/api/v1/api-keys/", {"name": "POS"}).json()
        secret = created["key"]
        assert secret.startswith(created["prefix"] + ".")
        assert "key" not in brand.api().get(f"/api/v1/api-keys/{created['id']}/").json()
        assert all("key" not in row for row in brand.api().get("/api/v1/api-keys/").json()["results"])
        assert client_with(secret).get("/api/v1/members/").status_code == 200

    def test_the_secret_is_stored_only_as_a_hash(self, brand):
        created = post_json(brand.api(), "/api/v1/api-keys/", {"name": "POS"}).json()
        row = model_to_dict(stored_key(brand, created["id"]), fields=None)
        row["hashed_key"] = stored_key(brand, created["id"]).hashed_key
        assert created["key"] not in {str(value) for value in row.values()}
        assert created["key"].split(".", 1)[1] not in "".join(str(value) for value in row.values())

    def test_a_revoked_key_is_refused_and_the_others_keep_working(self, brand):
        created = post_json(brand.api(), "/api/v1/api-keys/", {"name": "POS"}).json()
        revoked = post_json(brand.api(), f"/api/v1/api-keys/{created['id']}/revoke/", {}).json()
        assert revoked["active"] is False and revoked["revoked_at"]
        assert_error(client_with(created["key"]).get("/api/v1/members/"), 401)
        assert brand.api().get("/api/v1/members/").status_code == 200

    def test_a_key_can_revoke_itself(self, brand):
        key = stored_key_by_prefix(brand)
        assert post_json(brand.api(), f"/api/v1/api-keys/{key.pk}/revoke/", {}).status_code == 200
        assert_error(brand.api().get("/api/v1/members/"), 401)

    def test_using_a_key_records_when_it_was_last_used(self, brand):
        key = stored_key_by_prefix(brand)
        assert key.last_used_at is None
        brand.api().get("/api/v1/members/")
        used = stored_key(brand, key.pk).last_used_at
        assert used is not None
        assert brand.api().get(f"/api/v1/api-keys/{key.pk}/").json()["last_used_at"] is not None

    def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_refused(self, brand):
        key = stored_key_by_prefix(brand)
        assert_error(client_with(f"{key.prefix}.guessed").get("/api/v1/members/"), 401)
        assert stored_key(brand, key.pk).last_used_at is None

    def test_another_brands_key_cannot_be_revoked(self, brand, other_brand):
        theirs = stored_key_by_prefix(other_brand)
        assert_error(post_json(brand.api(), f"/api/v1/api-keys/{theirs.pk}/revoke/", {}), 404)
        assert other_brand.api().get("/api/v1/members/").status_code == 200

    def test_keys_cannot_be_renamed_or_deleted_through_the_api(self, brand):
        key = stored_key_by_prefix(brand)
        assert_error(patch_json(brand.api(), f"/api/v1/api-keys/{key.pk}/", {"name": "x"}), 405)
        assert_error(brand.api().delete(f"/api/v1/api-keys/{key.pk}/"), 405)

    def test_guides_and_store_managers_cannot_see_api_keys(self, brand):
        for staff in (brand.guide, brand.manager):
            assert_error(brand.session(staff).get("/api/v1/api-keys/"), 403)

    def test_an_operator_can_make_a_key_that_records_who_made_it(self, brand):
        created = post_json(brand.session(brand.operator), "/api/v1/api-keys/", {"name": "BI"}).json()
        assert stored_key(brand, created["id"]).created_by_id == brand.operator.pk


def stored_key_by_prefix(brand):
    prefix = brand.api_key.split(".", 1)[0]
    with brand.scope():
        return ApiKey.objects.get(prefix=prefix)
