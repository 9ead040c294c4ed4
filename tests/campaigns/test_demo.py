"""The demo SOP library installs, leaves tasks in the guides' lists, and installs once."""
from datetime import timedelta

import pytest

from campaigns.demo import LIBRARY, install_demo_campaigns
from campaigns import services
from campaigns.models import Campaign, Enrolment, GuideTask, Message, OutreachSettings, Step
from coupons.models import Coupon

from .helpers import T0, full_run, member, order

pytestmark = pytest.mark.django_db


def test_the_demo_library_runs_on_the_members_and_a_second_install_adds_nothing(in_brand):
    newcomer = member(in_brand, name="新客", joined_at=T0 - timedelta(days=5))
    dormant = member(in_brand, name="沉睡", joined_at=T0 - timedelta(days=400))
    order(in_brand, dormant, T0 - timedelta(days=120), category="外套")
    churned = member(in_brand, name="流失", joined_at=T0 - timedelta(days=500), mobile="13800138111")
    order(in_brand, churned, T0 - timedelta(days=300))
    full_run(in_brand, T0)

    first = install_demo_campaigns(in_brand.tenant, T0)
    assert first["campaigns"] == len(LIBRARY) == Campaign.objects.filter(status="active").count()
    welcome = GuideTask.objects.get(member=newcomer)
    assert welcome.campaign.name == "新会员欢迎礼包" and welcome.coupon is not None
    assert welcome.coupon.display_code in welcome.script
    care = GuideTask.objects.get(member=dormant)
    assert "外套新款到了" in care.script and care.guide == in_brand.guide
    recall = Campaign.objects.get(name="流失召回短信 A/B 测试")
    bucket = services.bucket_of(recall, churned.pk)
    arm = "control" if bucket < 10 else "A" if bucket < 55 else "B"
    assert Enrolment.objects.get(campaign=recall, member=churned).variant == arm
    # Without an SMS gateway the recall texts go through the console.
    recall_texts = Message.objects.filter(member=churned, campaign=recall)
    assert recall_texts.count() == (0 if arm == "control" else 1)
    assert set(recall_texts.values_list("channel", flat=True)) <= {"console"}

    counts = (Campaign.objects.count(), GuideTask.objects.count(), Message.objects.count(), Coupon.objects.count())
    install_demo_campaigns(in_brand.tenant, T0 + timedelta(hours=1))
    assert (Campaign.objects.count(), GuideTask.objects.count(), Message.objects.count(), Coupon.objects.count()) == counts


def test_a_brand_with_an_sms_gateway_gets_the_recall_by_sms(in_brand):
    OutreachSettings.objects.create(tenant=in_brand.tenant, sms_url="http://127.0.0.1:9/sms")
    full_run(in_brand, T0)
    install_demo_campaigns(in_brand.tenant, T0)
    recall = Step.objects.filter(campaign__name="流失召回短信 A/B 测试")
    assert set(recall.values_list("channel", flat=True)) == {"sms"}
    assert set(Step.objects.exclude(campaign__name="流失召回短信 A/B 测试").exclude(channel="").values_list(
        "channel", flat=True)) == {"console"}
