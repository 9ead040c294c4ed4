"""The demo brand's SOP library: the campaigns of the domain brief, running on the demo members.

``install_demo_campaigns(tenant, as_of)`` creates them (and the coupons they give), then replays
their last month over the stored lifecycle runs and orders (``demo_history``): enrolments, steps,
deliveries, the guides' outcomes, replies and coupon redemptions, up to ``as_of``, where guides
find today's tasks waiting. Running it again adds nothing twice.
"""
from decimal import Decimal

from django.db import transaction

from coupons.models import CouponTemplate

from . import services
from .demo_history import DEFAULT_SEED, replay_month
from .models import Campaign, Channel, Question, Step, Survey

COUPONS = {
    "new": {"name": "新客礼包 ¥66 无门槛券", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("66.00"), "valid_days": 90},
    "birthday": {"name": "生日礼 ¥100 券（满 300 可用）", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("100.00"),
                 "threshold": Decimal("300.00"), "valid_days": 30},
    "care": {"name": "回店礼 八折券", "type": CouponTemplate.Type.DISCOUNT, "discount_rate": Decimal("0.80"), "valid_days": 14},
    "recall_a": {"name": "召回 A ¥30 无门槛券", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("30.00"), "valid_days": 14},
    "recall_b": {"name": "召回 B ¥50 券（满 200 可用）", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("50.00"),
                 "threshold": Decimal("200.00"), "valid_days": 14},
    "survey_gift": {"name": "问卷答谢 ¥20 无门槛券", "type": CouponTemplate.Type.CASH_OFF, "amount": Decimal("20.00"),
                    "valid_days": 30},
}

SURVEYS = {
    "farewell": {
        "name": "流失客户告别问卷",
        "intro": "好久不见！占用您 1 分钟，告诉我们哪里做得不够好。提交后送您一张 ¥20 无门槛券，感谢您的建议。",
        "thanks": "谢谢您的反馈！¥20 无门槛券已放入您的会员账户，30 天内到店或小程序均可使用。",
        "questions": [
            ("您最近较少光顾的主要原因是？", "single", True,
             ["款式不合心意", "价格偏高", "尺码不合适", "导购服务体验不好", "已在其他品牌购买", "其他"]),
            ("您希望我们在哪些方面改进？", "multiple", True,
             ["更多新款", "更优惠的价格", "更完整的尺码", "更好的导购服务", "更方便的线上购买"]),
            ("还有什么想对我们说的？", "text", False, []),
        ],
    },
}


def _task(day, script, coupon=None, **extra):
    return {"delay_days": day, "action": "guide_task", "script": script, "coupon": coupon, **extra}


def _message(day, script, channel="console", coupon=None, **extra):
    return {"delay_days": day, "action": "message", "channel": channel, "script": script, "coupon": coupon, **extra}


LIBRARY = [
    ("新会员欢迎礼包", {"trigger": "stage_entered", "trigger_stage": "introduction", "exit_on_purchase": True}, [
        _task(0, "{name}您好，我是{store}的{guide}，欢迎加入！送您一张新客券 {coupon_code}（{coupon}），到店或小程序都能用。", "new"),
        _message(3, "{name}，本周新品已到店，新客券 {coupon_code} 还在有效期内，欢迎来逛逛。", promotional=True),
    ]),
    ("生日关怀", {"trigger": "birthday_month", "reentry_days": 300}, [
        _task(0, "{name}，生日月快乐！为您准备了生日礼券 {coupon_code}（{coupon}），祝您生日快乐。", "birthday"),
    ]),
    ("入会 60 天未购买：主动培育", {"trigger": "joined_no_purchase", "trigger_days": 60, "exit_on_purchase": True}, [
        _task(0, "{name}您好，最近{favourite_category}上了不少新款，有喜欢的我可以帮您留码。", promotional=True),
        _message(5, "{name}，入会专享：本周到店试穿即送小礼品。", promotional=True),
    ]),
    ("首购后回访：穿搭建议", {"trigger": "first_purchase"}, [
        _task(2, "{name}您好，上次买的{favourite_category}穿着还合适吗？我整理了几套搭配建议，发给您参考。"),
    ]),
    ("休眠客户一对一关怀", {"trigger": "stage_entered", "trigger_stage": "dormant", "exit_on_purchase": True}, [
        _task(0, "{name}，好久不见！给您留了一张回店礼券 {coupon_code}（{coupon}），{favourite_category}新款到了，欢迎回来看看。", "care"),
    ]),
    ("流失预警：导购问候", {"trigger": "churn_warning"}, [
        _task(0, "{name}您好，最近还好吗？{favourite_category}有几款新品很适合您，需要的话我拍给您看。"),
    ]),
    ("流失召回短信 A/B 测试", {
        "trigger": "stage_entered", "trigger_stage": "churned", "exit_on_purchase": True, "control_pct": 10,
        "variants": [{"key": "A", "weight": 45, "label": "¥30 无门槛"}, {"key": "B", "weight": 45, "label": "¥50 满 200"}],
    }, [
        _message(0, "【回归礼】{name}，送您 ¥30 无门槛券 {coupon_code}，14 天内有效。", "sms", "recall_a", variant="A"),
        _message(0, "【回归礼】{name}，送您满 200 减 50 券 {coupon_code}，14 天内有效。", "sms", "recall_b", variant="B"),
        {"delay_days": 14, "action": "survey", "channel": "sms", "survey": "farewell", "coupon": None,
         "script": "{name}您好，占用您 1 分钟告诉我们哪里做得不够好，提交即送 ¥20 无门槛券：{survey_link}"},
    ]),
    ("告别问卷答谢礼券", {"trigger": "survey_completed", "trigger_survey": "farewell"}, [
        {"delay_days": 0, "action": "coupon", "coupon": "survey_gift"},
    ]),
    ("优惠券 7 天内到期提醒", {"trigger": "coupon_expiring", "trigger_days": 7, "reentry_days": 30}, [
        _message(0, "{name}，您的优惠券即将到期，别忘了使用哦。"),
    ]),
]


def _template(key):
    fields = dict(COUPONS[key])
    template, _created = CouponTemplate.objects.get_or_create(
        name=fields.pop("name"), defaults={**fields, "validity": CouponTemplate.Validity.DAYS, "per_member_limit": None},
    )
    return template


def _survey(tenant, key):
    fields = dict(SURVEYS[key])
    questions = fields.pop("questions")
    survey, created = Survey.objects.get_or_create(
        name=fields.pop("name"), defaults={"tenant": tenant, "status": Survey.Status.OPEN, **fields}
    )
    if created:
        Question.objects.bulk_create([
            Question(tenant=tenant, survey=survey, position=position, text=text, kind=kind, required=required,
                     choices=choices)
            for position, (text, kind, required, choices) in enumerate(questions)
        ])
    return survey


@transaction.atomic
def _create(tenant):
    # Without an SMS gateway, the SMS steps send through the console, as the live-code joins do.
    sms = Channel.SMS if services.outreach_settings(tenant).sms_url else Channel.CONSOLE
    made = []
    for name, fields, steps in LIBRARY:
        if "trigger_survey" in fields:
            fields = {**fields, "trigger_survey": _survey(tenant, fields["trigger_survey"])}
        campaign, created = Campaign.objects.get_or_create(
            name=name, defaults={"tenant": tenant, "status": Campaign.Status.ACTIVE, **fields}
        )
        if created:
            for position, step in enumerate(steps):
                step = dict(step)
                coupon = step.pop("coupon")
                if "survey" in step:
                    step["survey"] = _survey(tenant, step["survey"])
                if step.get("channel") == Channel.SMS:
                    step["channel"] = sms
                Step.objects.create(
                    tenant=tenant, campaign=campaign, position=position,
                    coupon_template=_template(coupon) if coupon else None, **step,
                )
        made.append(campaign)
    return made


def install_demo_campaigns(tenant, as_of, seed=DEFAULT_SEED):
    """Create the SOP library in ``tenant`` (inside its tenant_context) and replay its last month
    up to ``as_of``. Returns {"campaigns": n, **the replay's figures}."""
    campaigns = _create(tenant)
    return {"campaigns": len(campaigns), **replay_month(tenant, as_of, seed=seed).as_dict()}
