"""The guide performance page and a campaign's chart over time in headless Chromium, on a laptop and
on a phone: the table, the commission, the chart drawn from the vendored ECharts, nothing wider than
the screen but the table's own scroll."""
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from campaigns import services
from campaigns.models import OutreachSettings
from members import services as members
from members.models import Member
from tests.campaigns.helpers import campaign, member
from tests.conftest import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 812}}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture
def sold(brand):
    """A task for each of two members of 导购甲 two days ago; one bought ¥500 the day after."""
    # 10:00 local, outside the quiet hours, two days ago.
    touched_at = brand.tenant.local_now().replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=2)
    with brand.scope():
        OutreachSettings.objects.create(tenant=brand.tenant, commission_rate=Decimal("4.00"))
        buyer = member(brand, name="林晓", joined_at=touched_at - timedelta(days=30))
        other = member(brand, name="周敏", joined_at=touched_at - timedelta(days=30))
        made = campaign(brand, [{"delay_days": 0, "action": "guide_task", "script": "{name}您好"}], name="新客关怀")
        services.enrol_members(made, Member.objects.filter(pk__in=[buyer.pk, other.pk]), touched_at)
        services.run_due_steps(brand.tenant, touched_at)
        order = {"external_id": "E2E-1", "member_external_id": buyer.external_id, "status": "paid",
                 "placed_at": touched_at + timedelta(days=1), "total": Decimal("500.00")}
        assert not members.ingest_orders(brand.tenant, [(0, order)])[1]
    brand.campaign = made
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
def test_an_operator_reads_the_guides_commission_and_the_campaigns_days(live_server, browser, sold, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORTS[device], locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "acme_operator")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/campaigns/performance/")
        row = page.locator(f"[data-testid=performance-table] tr[data-row='{sold.guide.pk}']")
        expect(row.locator("[data-testid=commission]")).to_have_text("¥20.00")
        expect(page.locator("[data-testid=total-sales]")).to_have_text("¥500.00")
        expect(page.locator("#performance-chart canvas")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[device]["width"]
        page.screenshot(path=SCREENSHOTS / f"{device}-performance.png", full_page=True)

        page.goto(f"{live_server.url}/campaigns/{sold.campaign.pk}/")
        expect(page.locator("#over-time-chart canvas")).to_have_count(1)
        page.click("[data-metric=converted]")
        expect(page.locator("[data-metric=converted]")).to_have_class("btn btn-outline-primary active")
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[device]["width"]
        page.screenshot(path=SCREENSHOTS / f"{device}-campaign-over-time.png", full_page=True)
    finally:
        context.close()
