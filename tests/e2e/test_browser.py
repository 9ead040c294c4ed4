"""The dashboard in headless Chromium: sign in, search members, open a 360° page, on a laptop
and on a phone. Screenshots land in var/screenshots for people to look at."""
import os
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from members.services import ingest_events, ingest_orders, upsert_members
from tests.conftest import PASSWORD

# Playwright's sync API keeps an event loop running in this thread; the ORM calls made here
# (fixtures) are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 812}}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def shop(brand):
    with brand.scope():
        upsert_members(brand.tenant, [
            (0, {"external_id": "M1", "name": "林晓", "mobile": "13800138001", "home_store": brand.store,
                 "owner_guide": brand.guide, "joined_at": T0}),
            (1, {"external_id": "M2", "name": "周敏", "mobile": "13900139002", "home_store": brand.store2,
                 "owner_guide": brand.guide2, "joined_at": T0}),
        ])
        ingest_orders(brand.tenant, [(0, {
            "external_id": "ORD-2025-0001", "member_external_id": "M1", "store": brand.store, "guide": brand.guide,
            "placed_at": T0, "status": "paid", "total": Decimal("1234.50"), "discount": Decimal("0"),
            "refunded_amount": Decimal("0"),
            "lines": [{"sku": "COAT-01", "name": "羊毛大衣", "category": "外套", "quantity": 1,
                       "unit_price": Decimal("1234.50"), "amount": Decimal("1234.50")}],
        })])
        ingest_events(brand.tenant, [(0, {
            "member_external_id": "M1", "type": "coupon_claimed", "occurred_at": T0, "properties": {},
            "external_id": "EV-1",
        })])
    return brand


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_an_operator_signs_in_finds_a_member_and_opens_their_360_page(live_server, browser, shop, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORTS[device], locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/")
        expect(page).to_have_url(f"{live_server.url}/login/?next=/")
        page.screenshot(path=SCREENSHOTS / f"{device}-1-login.png", full_page=True)
        page.fill("input[name=username]", "acme_operator")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("[data-testid=member-count]")).to_have_text("2")
        expect(page.locator("[data-testid=bind-rate]")).to_have_text("100.0%")
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        page.screenshot(path=SCREENSHOTS / f"{device}-2-dashboard.png", full_page=True)

        if device == "phone":
            page.click("[aria-controls=sidebar]")
            expect(page.locator("#sidebar")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / f"{device}-2b-menu.png")
            page.locator("#sidebar").get_by_role("link", name="会员").click()
        else:
            page.locator("#sidebar").get_by_role("link", name="会员").click()
        table = page.locator("[data-testid=member-table]")
        expect(table).to_contain_text("周敏")

        page.fill("#id_q", "林晓")
        page.press("#id_q", "Enter")
        expect(table).not_to_contain_text("周敏")
        expect(table).to_contain_text("林晓")
        expect(table).to_contain_text("138****8001")
        expect(page).to_have_url(f"{live_server.url}/members/?q=%E6%9E%97%E6%99%93")
        page.screenshot(path=SCREENSHOTS / f"{device}-3-search.png", full_page=True)

        table.get_by_role("link", name="林晓").click()
        orders = page.locator("[data-testid=orders]")
        expect(orders).to_contain_text("ORD-2025-0001")
        expect(orders).to_contain_text("羊毛大衣")
        expect(orders).to_contain_text("¥1,234.50")
        expect(page.locator("[data-testid=order-summary]")).to_contain_text("¥1,234.50")
        expect(page.locator("[data-testid=events]")).to_contain_text("领取优惠券")
        page.screenshot(path=SCREENSHOTS / f"{device}-4-member-360.png", full_page=True)

        page.click("[data-testid=language-switch]")
        page.get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("[data-testid=events]")).to_contain_text("Claimed a coupon")
        page.screenshot(path=SCREENSHOTS / f"{device}-5-member-360-en.png", full_page=True)
    finally:
        context.close()


def test_a_guide_cannot_open_another_guides_member_in_the_browser(live_server, browser, shop):
    with shop.scope():
        from members.models import Member

        theirs = Member.objects.get(external_id="M2").pk
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "acme_guide")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/members/")
        table = page.locator("[data-testid=member-table]")
        expect(table).to_contain_text("林晓")
        expect(table).not_to_contain_text("周敏")
        response = page.goto(f"{live_server.url}/members/{theirs}/")
        assert response.status == 404
    finally:
        context.close()
