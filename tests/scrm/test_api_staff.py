import pytest
from rest_framework.test import APIClient

from scrm.models import Staff
from scrm.services import create_staff
from tests.api_cases import ModelEndpointCases, assert_error, patch_json, post_json
from tests.conftest import PASSWORD

STAFF_FIELDS = ("username", "name", "role", "store_ids", "mobile", "wecom_userid", "active")


def make_staff(brand, names, store=None):
    store = store or brand.store
    return [
        create_staff(brand.tenant, f"{brand.tenant.slug}_{name}", PASSWORD, name, Staff.Role.GUIDE, [store])
        for name in names
    ]


def can_log_in(username, password):
    return APIClient().login(username=username, password=password)


@pytest.mark.django_db
class TestStaffEndpoint(ModelEndpointCases):
    url = "/api/v1/staff/"
    model = Staff
    contract_fields = STAFF_FIELDS
    list_queries = 4  # the API key, the count, the page with logins, and the stores of the page

    def make(self, brand, count):
        return make_staff(brand, [f"s{i}" for i in range(count)])

    def make_more(self, brand, count):
        return make_staff(brand, [f"t{i}" for i in range(count)], store=brand.store2)

    def create_payload(self, brand):
        return {
            "username": f"{brand.tenant.slug}_new", "password": "a-long-password", "name": "新导购", "role": "guide",
            "store_ids": [brand.store.pk], "mobile": "13800138000",
        }

    def foreign_payloads(self, brand, other):
        return [("store_ids", {**self.create_payload(brand), "store_ids": [other.store.pk]})]

    def update_payload(self, brand, obj):
        return {"name": "改名", "store_ids": [brand.store2.pk]}, {"name": "改名", "store_ids": [brand.store2.pk]}


@pytest.mark.django_db
class TestStaffAccounts:
    def test_a_created_staff_member_can_log_in_with_the_password(self, brand):
        payload = TestStaffEndpoint().create_payload(brand)
        body = post_json(brand.api(), "/api/v1/staff/", payload).json()
        assert "password" not in body
        assert body["username"] == payload["username"]
        assert can_log_in(payload["username"], payload["password"])

    def test_a_staff_member_can_be_created_inactive(self, brand):
        payload = {**TestStaffEndpoint().create_payload(brand), "active": False}
        response = post_json(brand.api(), "/api/v1/staff/", payload)
        assert response.status_code == 201, response.content
        assert response.json()["active"] is False
        assert not can_log_in(payload["username"], payload["password"])

    def test_deactivating_a_staff_member_ends_their_access(self, brand):
        client = brand.session(brand.guide)
        assert client.get("/api/v1/members/").status_code == 200
        patch_json(brand.api(), f"/api/v1/staff/{brand.guide.pk}/", {"active": False})
        assert_error(client.get("/api/v1/members/"), 401)
        assert not can_log_in(brand.guide.username, PASSWORD)

    def test_a_new_password_replaces_the_old(self, brand):
        patch_json(brand.api(), f"/api/v1/staff/{brand.guide.pk}/", {"password": "another-long-one"})
        assert can_log_in(brand.guide.username, "another-long-one")
        assert not can_log_in(brand.guide.username, PASSWORD)

    def test_an_email_is_set_read_and_checked(self, brand):
        payload = {**TestStaffEndpoint().create_payload(brand), "email": "new@acme.example"}
        body = post_json(brand.api(), "/api/v1/staff/", payload).json()
        assert body["email"] == "new@acme.example"
        changed = patch_json(brand.api(), f"/api/v1/staff/{body['id']}/", {"email": "other@acme.example"}).json()
        assert changed["email"] == "other@acme.example"
        assert Staff.objects.unscoped().get(pk=body["id"]).user.email == "other@acme.example"
        assert_error(patch_json(brand.api(), f"/api/v1/staff/{body['id']}/", {"email": "nope"}), 400, field="email")

    def test_a_taken_username_is_refused(self, brand, other_brand):
        payload = {**TestStaffEndpoint().create_payload(brand), "username": other_brand.guide.username}
        assert_error(post_json(brand.api(), "/api/v1/staff/", payload), 400, field="username")

    def test_a_guide_needs_a_store(self, brand):
        payload = {**TestStaffEndpoint().create_payload(brand), "store_ids": []}
        assert_error(post_json(brand.api(), "/api/v1/staff/", payload), 400, field="store_ids")

    def test_a_short_password_is_refused(self, brand):
        payload = {**TestStaffEndpoint().create_payload(brand), "password": "short"}
        assert_error(post_json(brand.api(), "/api/v1/staff/", payload), 400, field="password")

    def test_a_store_manager_cannot_create_staff(self, brand):
        response = post_json(brand.session(brand.manager), "/api/v1/staff/", TestStaffEndpoint().create_payload(brand))
        assert_error(response, 403)

    def test_an_operator_cannot_make_an_owner(self, brand):
        payload = {**TestStaffEndpoint().create_payload(brand), "role": "owner"}
        assert_error(post_json(brand.session(brand.operator), "/api/v1/staff/", payload), 403)
        assert_error(patch_json(brand.session(brand.operator), f"/api/v1/staff/{brand.guide.pk}/", {"role": "owner"}), 403)

    def test_an_operator_cannot_change_an_owner(self, brand):
        response = patch_json(brand.session(brand.operator), f"/api/v1/staff/{brand.owner.pk}/", {"password": "taken-over-1"})
        assert_error(response, 403)
        assert can_log_in(brand.owner.username, PASSWORD)

    def test_the_staff_list_filters_by_role_and_store(self, brand):
        def names(**params):
            return {row["username"] for row in brand.api().get("/api/v1/staff/", params).json()["results"]}

        assert names(role="guide") == {brand.guide.username, brand.guide2.username}
        assert names(store_id=brand.store2.pk) == {brand.guide2.username}
