"""A member answers the farewell survey on a 375 px phone from the link in their SMS, without a
login: the page fits, missing answers are marked at the question, and the reward coupon is issued."""
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from campaigns import surveys
from campaigns.models import Question, Survey, SurveyResponse
from coupons.models import Coupon
from tests.campaigns.helpers import campaign, member, template

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"width": 375, "height": 812}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture
def farewell(brand):
    with brand.scope():
        survey = Survey.objects.create(
            tenant=brand.tenant, name="流失客户告别问卷", status=Survey.Status.OPEN,
            intro="占用您 1 分钟，告诉我们哪里做得不够好。", thanks="谢谢您的反馈！¥20 券已放入您的账户。",
        )
        for position, (text, kind, required, choices) in enumerate([
            ("您最近较少光顾的主要原因是？", "single", True, ["款式不合心意", "价格偏高", "尺码不合适"]),
            ("您希望我们在哪些方面改进？", "multiple", True, ["更多新款", "更优惠的价格", "更完整的尺码"]),
            ("还有什么想对我们说的？", "text", False, []),
        ]):
            Question.objects.create(tenant=brand.tenant, survey=survey, position=position, text=text, kind=kind,
                                    required=required, choices=choices)
        gift = template(brand, name="问卷答谢 ¥20")
        campaign(brand, [{"delay_days": 0, "action": "coupon", "coupon_template": gift}], name="问卷答谢",
                 trigger="survey_completed", trigger_stage="", trigger_survey=survey)
        lin = member(brand, name="林晓", mobile="13800138001")
    token = surveys.make_token(brand.tenant.pk, survey.pk, lin.pk, timezone.now())
    return {"survey": survey, "lin": lin, "path": f"/s/{token}/"}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def test_a_member_answers_the_farewell_survey_on_a_phone_and_gets_the_coupon(live_server, browser, brand, farewell):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(live_server.url + farewell["path"])
        expect(page.locator("h1")).to_have_text("流失客户告别问卷")
        expect(page.locator("[data-testid=question]")).to_have_count(3)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"
        submit = page.locator("[data-testid=survey-form] button[type=submit]")
        box = submit.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 300, box
        page.screenshot(path=SCREENSHOTS / "survey-1-phone.png", full_page=True)

        page.get_by_text("价格偏高").tap()
        submit.tap()
        errors = page.locator("[data-testid=question-error]")
        expect(errors).to_have_count(1)
        second = page.locator("[data-testid=question]").nth(1)
        expect(second.locator("[data-testid=question-error]")).to_be_visible()
        expect(page.locator("[data-testid=question]").nth(0).locator("input:checked")).to_have_count(1)
        page.screenshot(path=SCREENSHOTS / "survey-2-phone-missing.png", full_page=True)

        second.get_by_text("更完整的尺码").tap()
        second.get_by_text("更多新款").tap()
        page.fill("textarea", "希望多出大码")
        submit.tap()
        expect(page.locator("[data-testid=thanks]")).to_contain_text("谢谢您的反馈！¥20 券已放入您的账户。")
        page.screenshot(path=SCREENSHOTS / "survey-3-phone-thanks.png", full_page=True)

        page.goto(live_server.url + farewell["path"])
        expect(page.locator("[data-testid=thanks]")).to_be_visible()
        page.goto(live_server.url + farewell["path"].replace("/s/", "/s/x"))
        expect(page.locator("[data-testid=problem]")).to_be_visible()
    finally:
        context.close()
    with brand.scope():
        response = SurveyResponse.objects.get()
        assert sorted(response.answers.values_list("choice", flat=True)) == ["", "价格偏高", "更多新款", "更完整的尺码"]
        assert Coupon.objects.filter(member=farewell["lin"], template__name="问卷答谢 ¥20").count() == 1
