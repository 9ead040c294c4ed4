import pytest

from scrm.models import Store
from tests.api_cases import ModelEndpointCases, assert_error, patch_json, post_json

STORE_FIELDS = ("code", "name", "city", "region", "active")


def make_stores(brand, codes):
    with brand.scope():
        return [Store.objects.create(code=code, name=f"门店{code}", city="上海") for code in codes]


@pytest.mark.django_db
class TestStoresEndpoint(ModelEndpointCases):
    url = "/api/v1/stores/"
    model = Store
    contract_fields = STORE_FIELDS
    list_queries = 3  # the API key, the count and the page

    def make(self, brand, count):
        return make_stores(brand, [f"S{i}" for i in range(count)])

    def make_more(self, brand, count):
        return make_stores(brand, [f"T{i}" for i in range(count)])

    def create_payload(self, brand):
        return {"code": "BJ01", "name": "北京三里屯店", "city": "北京", "region": "华北"}

    def update_payload(self, brand, obj):
        return {"name": "新名字", "active": False}, {"name": "新名字", "active": False}


@pytest.mark.django_db
class TestStoreRules:
    def test_a_store_code_is_unique_within_a_brand(self, brand):
        response = post_json(brand.api(), "/api/v1/stores/", {"code": brand.store.code, "name": "重复"})
        assert_error(response, 400, field="code")

    def test_another_brand_may_use_the_same_store_code(self, brand, other_brand):
        make_stores(other_brand, ["SH01"])
        assert post_json(brand.api(), "/api/v1/stores/", {"code": "SH01", "name": "上海一店"}).status_code == 201

    def test_renaming_a_store_to_its_own_code_is_no_conflict(self, brand):
        response = patch_json(brand.api(), f"/api/v1/stores/{brand.store.pk}/", {"code": brand.store.code, "city": "苏州"})
        assert response.status_code == 200, response.content

    def test_guides_and_store_managers_may_read_but_not_change_stores(self, brand):
        for staff in (brand.guide, brand.manager):
            client = brand.session(staff)
            assert client.get("/api/v1/stores/").status_code == 200
            assert_error(post_json(client, "/api/v1/stores/", {"code": "X1", "name": "X"}), 403)
            assert_error(patch_json(client, f"/api/v1/stores/{brand.store.pk}/", {"name": "X"}), 403)

    def test_an_operator_session_may_change_stores(self, brand):
        response = post_json(brand.session(brand.operator), "/api/v1/stores/", {"code": "X1", "name": "X"})
        assert response.status_code == 201, response.content

    def test_stores_cannot_be_deleted_through_the_api(self, brand):
        assert_error(brand.api().delete(f"/api/v1/stores/{brand.store.pk}/"), 405)
