"""The demo brand's tag groups (both kinds) and segments, including the brief's four examples."""
from django.db import transaction

from scrm.models import Store

from .models import Segment, Tag, TagGroup

# The demo catalogue's everyday items: plain T-shirt, base-layer knit, socks, towels.
BASIC_SKUS = ["UT-AP01", "UT-AP11", "UT-AC11", "UT-HO02"]
CATEGORY_NAMES = [
    ("apparel", "服装"), ("shoes_bags", "鞋包"), ("accessories", "配饰"), ("beauty", "美妆"), ("household", "家居"),
]
CHANNEL_NAMES = [
    ("store_qr", "门店扫码"), ("parcel_card", "包裹卡"), ("mini_program", "小程序"), ("sms_link", "短信链接"),
    ("poster", "海报"), ("livestream", "直播"), ("referral", "老带新"), ("island_counter", "中岛柜"),
]


def _cond(field, op, value=None, **extra):
    node = {"field": field, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


def _all(*nodes):
    return {"all": list(nodes)}


SEGMENTS = [
    ("高频基础款客户", "买过 5 次及以上，60% 以上的消费在基础款上：额外的会员关怀。",
     _all(_cond("orders_total", "gte", 5), _cond("spend_share", "gte", 60, skus=BASIC_SKUS))),
    ("本月生日的成长期与成熟期客户", "生日在本月，处于成长期或成熟期：生日问候与生日券。",
     _all(_cond("birthday_month", "this_month"), _cond("stage", "in", ["growth", "maturity"]))),
    ("入会 60 天内未购买", "最近 60 天入会、从未购买：主动联系，送内容和权益。",
     _all(_cond("joined_at", "within_last_days", 60), _cond("orders_total", "eq", 0))),
    ("休眠且券 7 天内到期", "休眠期，持有 7 天内到期的未使用券：导购一对一提醒。",
     _all(_cond("stage", "eq", "dormant"), _cond("coupon_expiring", "within_next_days", 7))),
]


def _group(name, kind, exclusive, description, position, tags):
    group, _created = TagGroup.objects.get_or_create(
        name=name, defaults={"kind": kind, "exclusive": exclusive, "description": description, "position": position}
    )
    for index, (tag_name, colour, rule) in enumerate(tags):
        Tag.objects.get_or_create(
            group=group, name=tag_name, defaults={"colour": colour, "rule": rule, "position": index}
        )
    return group


@transaction.atomic
def install_demo_tags(tenant):
    """Create the demo tag groups and segments in ``tenant`` (run inside its tenant_context).
    Running it again adds nothing twice."""
    auto, manual = TagGroup.Kind.AUTOMATIC, TagGroup.Kind.MANUAL
    segments = {}
    for name, description, rules in SEGMENTS:
        segments[name], _created = Segment.objects.get_or_create(
            name=name, defaults={"description": description, "rules": rules}
        )
    _group("客单价", auto, True, "平均每单消费金额", 10, [
        ("低客单 ¥100 以下", "#9ecae1", _cond("aov", "lt", 100)),
        ("中客单 ¥100–300", "#4292c6", _cond("aov", "between", [100, 300])),
        ("高客单 ¥300 以上", "#08519c", _cond("aov", "gt", 300)),
    ])
    _group("购买频次", auto, True, "最近 365 天的购买次数", 20, [
        ("未购买", "#bdbdbd", _cond("orders_total", "eq", 0)),
        ("一年未购", "#969696", _cond("orders_365", "eq", 0)),
        ("低频 1–2 次", "#a1d99b", _cond("orders_365", "between", [1, 2])),
        ("中频 3–5 次", "#41ab5d", _cond("orders_365", "between", [3, 5])),
        ("高频 6 次以上", "#006d2c", _cond("orders_365", "gte", 6)),
    ])
    _group("生命周期", auto, True, "跟随生命周期阶段", 30, [
        ("引入期", "#6baed6", _cond("stage", "eq", "introduction")),
        ("成长期", "#74c476", _cond("stage", "eq", "growth")),
        ("成熟期", "#238b45", _cond("stage", "eq", "maturity")),
        ("休眠期", "#fd8d3c", _cond("stage", "eq", "dormant")),
        ("流失期", "#d94801", _cond("stage", "eq", "churned")),
    ])
    _group("风险", auto, False, "需要导购尽快关注的客户", 40, [
        ("流失预警", "#e6550d", _cond("churn_warning", "eq", True)),
        ("已删除导购", "#a50f15", _cond("contact_status", "ne", "active")),
    ])
    _group("年龄段", auto, True, "按生日计算", 50, [
        ("18 岁以下", "#fde0dd", _cond("age", "lt", 18)),
        ("18–24 岁", "#fcc5c0", _cond("age", "between", [18, 24])),
        ("25–34 岁", "#fa9fb5", _cond("age", "between", [25, 34])),
        ("35–44 岁", "#f768a1", _cond("age", "between", [35, 44])),
        ("45 岁以上", "#c51b8a", _cond("age", "gte", 45)),
    ])
    _group("偏好品类", auto, True, "最近 365 天消费最多的品类", 60, [
        (label, "#807dba", _cond("favourite_category", "eq", key)) for key, label in CATEGORY_NAMES
    ])
    _group("来源渠道", auto, True, "入会渠道", 70, [
        (label, "#8c6bb1", _cond("source_channel", "eq", key)) for key, label in CHANNEL_NAMES
    ])
    stores = list(Store.objects.filter(active=True).order_by("code")[:20])
    if stores:
        _group("常去门店", auto, True, "最近 365 天下单最多的门店", 80, [
            (store.name, "#54278f", _cond("preferred_store", "eq", store.pk)) for store in stores
        ])
    _group("消费特征", auto, False, "价格敏感、基础款、互动", 90, [
        ("价格敏感", "#fdae6b", _all(_cond("orders_total", "gte", 2), _cond("coupon_order_share", "gte", 50))),
        ("基础款爱好者", "#fd8d3c", _all(_cond("orders_total", "gte", 3), _cond("spend_share", "gte", 60, skus=BASIC_SKUS))),
        ("近 30 天有回复", "#31a354",
         _cond("event_count", "gte", 1, event="message_replied", days=30)),
        ("本月生日成长成熟客", "#de2d26",
         _cond("segment", "eq", segments["本月生日的成长期与成熟期客户"].pk)),
    ])
    _group("客户特征", manual, False, "导购和运营手动标记", 100, [
        ("KOC", "#e7298a", None), ("星推官", "#ce1256", None), ("需回访", "#e6ab02", None), ("投诉过", "#a6761d", None),
    ])
    _group("尺码", manual, True, "常穿尺码", 110, [
        ("S", "#666666", None), ("M", "#666666", None), ("L", "#666666", None), ("XL", "#666666", None),
    ])
    _group("内容偏好", manual, False, "喜欢的内容", 120, [
        ("穿搭", "#1b9e77", None), ("新品", "#d95f02", None), ("福利", "#7570b3", None),
    ])
