"""A live code in headless Chromium: a customer joins from the landing page on a 375 px phone with
the code from the SMS, and an operator prints the code's card. Screenshots land in var/screenshots."""
import json
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from campaigns import acquisition
from campaigns.models import LiveCodeJoin, OutreachSettings
from tests.campaigns.helpers import template
from tests.campaigns.stub_server import Provider
from tests.conftest import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
# A6 in PostScript points (1/72 inch): 105 mm x 148 mm.
A6_POINTS = (105 / 25.4 * 72, 148 / 25.4 * 72)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def gateway(brand):
    with Provider() as running:
        running.answer("/sms/send", (200, {"code": "OK", "message_id": "sms-1"}))
        with brand.scope():
            OutreachSettings.objects.create(tenant=brand.tenant, sms_url=running.url + "/sms/send", sms_account="acme",
                                            sms_secret="pa55", sms_signature="ACME")
        yield running


@pytest.fixture
def live_code(brand):
    with brand.scope():
        gift = template(brand, name="新客礼 ¥66")
        return acquisition.save_live_code(brand.tenant, {
            "name": "包裹卡 2026 春", "channel_type": "parcel_card", "store": brand.store, "rule": "round_robin",
            "pool": [brand.guide], "welcome_coupon": gift, "status": "active",
        }, by=brand.operator, as_of=timezone.now())


def test_a_customer_joins_on_a_phone_with_the_code_from_the_sms(live_server, browser, brand, gateway, live_code):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/j/{live_code.code}/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("[data-testid=store]")).to_have_text("acme store 1")
        page.screenshot(path=SCREENSHOTS / "livecode-landing-1-mobile.png", full_page=True)

        page.fill("input[name=mobile]", "1380013")
        page.click("[data-testid=send-code]")
        expect(page.locator("[data-testid=mobile-error]")).to_be_visible()
        assert gateway.calls("/sms/send") == []

        page.fill("input[name=mobile]", "138 0013 8000")
        page.click("[data-testid=send-code]")
        expect(page.locator("[data-step=code]")).to_be_visible()
        expect(page.locator("[data-testid=sent-to]")).to_contain_text("138 **** 8000")
        page.screenshot(path=SCREENSHOTS / "livecode-landing-2-code.png", full_page=True)
        (call,) = gateway.calls("/sms/send")
        sms = json.loads(call["body"])
        assert sms["mobile"] == "13800138000"
        digits = re.search(r"\d{6}", sms["content"]).group(0)

        page.fill("input[name=code]", digits)
        page.click("[data-testid=confirm-code]")
        expect(page.locator("[data-testid=guide-name]")).to_have_text("导购甲")
        with brand.scope():
            joined = LiveCodeJoin.objects.select_related("coupon").get(live_code=live_code)
        expect(page.locator("[data-testid=coupon-code]")).to_have_text(joined.coupon.display_code)
        expect(page.locator("[data-testid=guide-will-contact]")).to_be_visible()
        # Nothing on the page is wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=SCREENSHOTS / "livecode-landing-3-welcome.png", full_page=True)
    finally:
        context.close()


def test_an_operator_prints_the_code_on_an_a6_card(live_server, browser, brand, live_code):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/?next=/campaigns/live-codes/{live_code.pk}/print/")
        page.fill("input[name=username]", "acme_operator")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("[data-testid=print-card]")).to_be_visible()
        expect(page.locator("[data-testid=print-store]")).to_have_text("acme store 1")
        expect(page.locator("[data-testid=cta-en]")).to_contain_text("Scan to add your personal shopping guide")
        page.screenshot(path=SCREENSHOTS / "livecode-print-desktop.png", full_page=True)
        card = page.locator("[data-testid=print-card]").bounding_box()
        qr = page.locator(".qr svg").bounding_box()
        assert qr["width"] > card["width"] * 0.5

        page.emulate_media(media="print")
        expect(page.locator("[data-testid=print]")).to_be_hidden()
        pdf = page.pdf(prefer_css_page_size=True, print_background=True)
        boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
        assert boxes and all(abs(float(w) - A6_POINTS[0]) < 2 and abs(float(h) - A6_POINTS[1]) < 2 for w, h in boxes)
        assert len(boxes) == 1, "the card fits on one sheet"
    finally:
        context.close()
