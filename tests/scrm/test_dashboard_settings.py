"""Settings pages: stores, staff and API keys; owners and operators only, inside their brand."""
import pytest
from django.test import Client

from scrm.models import ApiKey, Staff, Store
from tests.conftest import PASSWORD

SETTINGS_PAGES = [
    ("get", "/settings/stores/"), ("get", "/settings/stores/new/"), ("get", "/settings/staff/"),
    ("get", "/settings/staff/new/"), ("get", "/settings/api-keys/"), ("post", "/settings/api-keys/"),
]


@pytest.mark.parametrize("role", ["guide", "manager"])
def test_guides_and_store_managers_may_not_open_settings(brand, role):
    client = brand.session(getattr(brand, role))
    for method, path in SETTINGS_PAGES:
        assert getattr(client, method)(path).status_code == 403, path
    assert client.get(f"/settings/stores/{brand.store.pk}/").status_code == 403
    assert client.post(f"/settings/api-keys/{ApiKey.objects.unscoped().get(tenant=brand.tenant).pk}/revoke/").status_code == 403


def test_settings_send_an_anonymous_visitor_to_sign_in(client, brand):
    for _method, path in SETTINGS_PAGES:
        assert client.get(path).status_code == 302


def test_an_operator_creates_and_edits_a_store(brand):
    client = brand.session(brand.operator)
    response = client.post("/settings/stores/new/", {"code": "SZ-01", "name": "深圳万象城店", "city": "深圳", "active": "on"})
    assert response.status_code == 302
    with brand.scope():
        store = Store.objects.get(code="SZ-01")
    assert "深圳万象城店" in client.get("/settings/stores/").content.decode()
    client.post(f"/settings/stores/{store.pk}/", {"code": "SZ-01", "name": "深圳湾店", "city": "深圳"})
    store.refresh_from_db()
    assert store.name == "深圳湾店" and store.active is False


def test_a_store_code_is_unique_in_the_brand_but_free_in_another(brand, other_brand):
    response = brand.session(brand.operator).post(
        "/settings/stores/new/", {"code": brand.store.code, "name": "重复"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "A store with this code already exists." in response.content.decode()
    response = other_brand.session(other_brand.operator).post("/settings/stores/new/", {"code": brand.store.code, "name": "同码"})
    assert response.status_code == 302


def test_an_operator_adds_a_guide_who_can_then_sign_in_and_see_their_store(brand):
    client = brand.session(brand.operator)
    response = client.post("/settings/staff/new/", {
        "username": "new_guide", "password": "a-long-password-1", "name": "新导购", "role": "guide",
        "stores": [brand.store2.pk], "mobile": "13600136000", "active": "on",
    })
    assert response.status_code == 302
    with brand.scope():
        guide = Staff.objects.get(user__username="new_guide")
        assert list(guide.stores.all()) == [brand.store2]
    assert guide.tenant_id == brand.tenant.pk
    assert Client().login(username="new_guide", password="a-long-password-1")


def test_a_guide_must_belong_to_a_store_and_passwords_must_be_long(brand):
    response = brand.session(brand.operator).post("/settings/staff/new/", {
        "username": "storeless", "password": "short", "name": "无店", "role": "guide", "active": "on",
    }, HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Guides and store managers belong to at least one store." in page
    assert "too short" in page


def test_editing_staff_changes_role_stores_password_and_deactivation_blocks_sign_in(brand):
    client = brand.session(brand.operator)
    client.post(f"/settings/staff/{brand.guide.pk}/", {
        "username": "acme_guide", "password": "another-password-2", "name": "导购甲", "role": "store_manager",
        "stores": [brand.store.pk, brand.store2.pk], "active": "on",
    })
    brand.guide.refresh_from_db()
    assert brand.guide.role == Staff.Role.STORE_MANAGER
    with brand.scope():
        assert set(brand.guide.stores.all()) == {brand.store, brand.store2}
    assert Client().login(username="acme_guide", password="another-password-2")
    client.post(f"/settings/staff/{brand.guide.pk}/", {
        "username": "acme_guide", "password": "", "name": "导购甲", "role": "store_manager", "stores": [brand.store.pk],
    })
    brand.guide.refresh_from_db()
    assert brand.guide.active is False
    assert not Client().login(username="acme_guide", password="another-password-2")


def test_an_operator_may_not_edit_an_owner_nor_make_one(brand):
    client = brand.session(brand.operator)
    assert client.get(f"/settings/staff/{brand.owner.pk}/").status_code == 403
    response = client.post("/settings/staff/new/", {
        "username": "boss2", "password": "a-long-password-1", "name": "老板", "role": "owner", "active": "on",
    })
    assert response.status_code == 200
    with brand.scope():
        assert not Staff.objects.filter(user__username="boss2").exists()


def test_an_api_key_secret_is_shown_once_and_lets_an_integration_in(brand):
    client = brand.session(brand.operator)
    response = client.post("/settings/api-keys/", {"name": "POS sync"})
    assert response["Cache-Control"] == "no-store"
    with brand.scope():
        key = ApiKey.objects.get(name="POS sync")
    page = response.content.decode()
    secret = page.split('id="new-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith(key.prefix + ".")
    assert key.matches(secret) and key.created_by == brand.operator
    again = client.get("/settings/api-keys/").content.decode()
    assert "POS sync" in again and secret not in again
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert api.get("/api/v1/members/").status_code == 200


def test_revoking_an_api_key_locks_the_integration_out(brand):
    client = brand.session(brand.operator)
    with brand.scope():
        key = ApiKey.objects.get()
    assert brand.api().get("/api/v1/members/").status_code == 200
    response = client.post(f"/settings/api-keys/{key.pk}/revoke/", HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert brand.api().get("/api/v1/members/").status_code in (401, 403)
    assert client.get(f"/settings/api-keys/{key.pk}/revoke/").status_code == 405


def test_another_brands_store_staff_and_api_key_are_not_found(brand, other_brand):
    client = brand.session(brand.owner)
    with other_brand.scope():
        their_key = ApiKey.objects.get()
    assert client.get(f"/settings/stores/{other_brand.store.pk}/").status_code == 404
    assert client.post(f"/settings/stores/{other_brand.store.pk}/", {"code": "X", "name": "X"}).status_code == 404
    assert client.get(f"/settings/staff/{other_brand.guide.pk}/").status_code == 404
    assert client.post(f"/settings/api-keys/{their_key.pk}/revoke/").status_code == 404
    their_key.refresh_from_db()
    assert their_key.revoked_at is None
    lists = "".join(client.get(p).content.decode() for p in ("/settings/stores/", "/settings/staff/", "/settings/api-keys/"))
    assert other_brand.store.name not in lists and "rival_guide" not in lists and their_key.prefix not in lists


def test_a_staff_member_cannot_assign_another_brands_store(brand, other_brand):
    response = brand.session(brand.operator).post("/settings/staff/new/", {
        "username": "sneaky", "password": "a-long-password-1", "name": "越界", "role": "guide",
        "stores": [other_brand.store.pk], "active": "on",
    })
    assert response.status_code == 200
    with brand.scope():
        assert not Staff.objects.filter(user__username="sneaky").exists()


def test_a_staff_members_email_is_kept_with_their_login_and_checked(brand):
    client = brand.session(brand.operator)
    fields = {"username": brand.guide.username, "password": "", "name": "导购甲", "role": "guide",
              "stores": [brand.store.pk], "active": "on"}
    response = client.post(f"/settings/staff/{brand.guide.pk}/", {**fields, "email": "not-an-address"},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and "valid email" in response.content.decode()
    client.post(f"/settings/staff/{brand.guide.pk}/", {**fields, "email": "guide@acme.example"})
    brand.guide.refresh_from_db()
    assert brand.guide.user.email == "guide@acme.example"
    page = client.get(f"/settings/staff/{brand.guide.pk}/").content.decode()
    assert 'value="guide@acme.example"' in page
