"""The dashboard shell: signing in and out, the home page figures, navigation and languages."""
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from members.services import ingest_orders, upsert_members
from tests.conftest import PASSWORD

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=dt_timezone.utc)


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_staff_member_signs_in_lands_on_the_dashboard_and_signs_out(brand):
    client = Client()
    response = client.post("/login/", {"username": "acme_operator", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "运营" in response.content.decode()
    response = client.post("/logout/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert client.get("/").status_code == 302


def test_a_wrong_password_keeps_the_visitor_on_the_login_page(brand):
    response = Client().post("/login/", {"username": "acme_operator", "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "<form" in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_a_login_that_is_not_a_brands_staff_member_is_refused(db):
    user = get_user_model().objects.create_user("lonely", password=PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.get("/").status_code == 403
    assert client.get("/members/").status_code == 403


def test_a_deactivated_staff_member_cannot_sign_in(brand):
    from scrm.services import update_staff

    update_staff(brand.guide, active=False)
    response = Client().post("/login/", {"username": "acme_guide", "password": PASSWORD})
    assert response.status_code == 200


@pytest.fixture
def orders(brand):
    with brand.scope():
        upsert_members(brand.tenant, [
            (0, {"external_id": "M1", "name": "林晓", "mobile": "13800138001", "owner_guide": brand.guide,
                 "home_store": brand.store, "joined_at": T0}),
            (1, {"external_id": "M2", "name": "周敏", "owner_guide": brand.guide2, "home_store": brand.store2,
                 "joined_at": T0, "contact_status": "deleted_by_customer"}),
        ])
        base = {"placed_at": T0, "status": "paid", "total": Decimal("100.00"), "discount": Decimal("0"),
                "refunded_amount": Decimal("0"), "lines": []}
        ingest_orders(brand.tenant, [
            (0, {**base, "external_id": "O1", "member_external_id": "M1"}),
            (1, {**base, "external_id": "O2", "member_external_id": "M2"}),
            (2, {**base, "external_id": "O3", "mobile": "13000000000"}),
        ])


def test_the_home_page_shows_member_and_order_counts_and_the_order_binding_rate(brand, orders):
    page = brand.session(brand.operator).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="member-count">2<' in page
    assert 'data-testid="bind-rate">66.7%<' in page
    assert "2 of 3 orders bound to a member" in page
    assert "林晓" in page


def test_a_guide_sees_their_own_member_count_and_not_the_brands_binding_rate(brand, orders):
    page = brand.session(brand.guide).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="member-count">1<' in page
    assert "bind-rate" not in page
    assert "周敏" not in page


def test_the_navigation_links_every_section_and_hides_what_a_guide_may_not_use(brand):
    page = brand.session(brand.operator).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for href in ("/members/", "/lifecycle/", "/tagging/", "/campaigns/", "/coupons/", "/campaigns/live-codes/"):
        assert f'href="{href}"' in page
    assert 'aria-disabled="true"' not in page
    assert 'href="/settings/api-keys/"' in page
    guide_page = brand.session(brand.guide).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "/settings/" not in guide_page
    assert "/campaigns/live-codes/" not in guide_page


def test_the_dashboard_speaks_chinese_by_default_and_english_after_switching(brand):
    client = brand.session(brand.operator)
    assert "会员" in client.get("/").content.decode()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"}, follow=True)
    page = response.content.decode()
    assert 'lang="en"' in page and "Members" in page
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert 'lang="zh-hans"' in client.get("/").content.decode()


def test_static_assets_are_served_locally(brand):
    page = brand.session(brand.operator).get("/").content.decode()
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in page
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "//cdn" not in page and "https://" not in page
