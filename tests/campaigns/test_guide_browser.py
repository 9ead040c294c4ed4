"""The guide's task list in headless Chromium on a 375 px phone: counts, the card, copy, a tap."""
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from campaigns import services
from campaigns.models import GuideTask
from tests.conftest import PASSWORD

from .helpers import campaign, full_run, member, order, template

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"width": 375, "height": 812}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture
def tasks(brand):
    now = timezone.now()
    with brand.scope():
        gift = template(brand, name="回店礼 ¥50")
        lin = member(brand, name="林晓", joined_at=now - timedelta(days=200))
        order(brand, lin, now - timedelta(days=150), category="外套")
        member(brand, name="王芳", joined_at=now - timedelta(days=5))
        campaign(brand, [{"delay_days": 0, "action": "guide_task", "coupon_template": gift, "due_hours": 4,
                          "script": "{name}您好，为您留了{favourite_category}新品，券码 {coupon_code}"}],
                 trigger="schedule", schedule="daily", trigger_stage="")
        full_run(brand, now - timedelta(hours=2))
        services.enrol_daily(brand.tenant, now - timedelta(hours=1))
        services.run_due_steps(brand.tenant, now - timedelta(hours=1))
        GuideTask.objects.filter(member__name="王芳").update(due_at=now - timedelta(minutes=30))
    return brand


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def test_a_guide_works_through_the_task_list_on_a_phone(live_server, browser, tasks):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/?next=/guide/")
        page.fill("input[name=username]", "acme_guide")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("今日任务")
        expect(page.locator("[data-testid=count-open]")).to_have_text("2")
        expect(page.locator("[data-testid=count-overdue]")).to_have_text("1")
        overdue = page.locator("[data-group=overdue] [data-testid=task-card]")
        expect(overdue).to_have_count(1)
        expect(overdue).to_contain_text("王芳")
        expect(overdue).to_have_class("card task-card mb-3 overdue")

        card = page.locator("[data-testid=task-card]", has_text="林晓")
        expect(card.locator("[data-testid=script]")).to_contain_text("林晓您好，为您留了外套新品，券码 ")
        expect(card.locator("[data-testid=coupon]")).to_contain_text("回店礼 ¥50")
        expect(card.locator("[data-stage]")).to_have_text("休眠期")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"
        page.screenshot(path=SCREENSHOTS / "phone-guide-1-tasks.png", full_page=True)

        card.get_by_role("button", name="复制话术").tap()
        expect(card.get_by_role("button", name="已复制")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("林晓您好，为您留了外套新品，券码 ")

        card.get_by_role("button", name="已回复").tap()
        expect(card.locator("[data-testid=outcome]")).to_contain_text("已回复")
        page.screenshot(path=SCREENSHOTS / "phone-guide-2-replied.png", full_page=True)
        page.reload()
        expect(page.locator("[data-testid=count-done]")).to_have_text("1")
        expect(page.locator("[data-testid=count-open]")).to_have_text("1")
        expect(page.locator("[data-testid=task-card]", has_text="林晓")).to_have_count(0)
    finally:
        context.close()
    with tasks.scope():
        assert GuideTask.objects.get(member__name="林晓").status == "replied"
