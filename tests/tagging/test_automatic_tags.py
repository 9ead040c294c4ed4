from datetime import timedelta
from decimal import Decimal

from lifecycle.services import score_full
from lifecycle.signals import run_finished
from members.models import Member
from tagging.demo import install_demo_tags
from tagging.models import MemberTag, Tag, TagChange, TagGroup
from tagging.services import refresh_automatic_tags

from .conftest import AS_OF, add_members, add_orders


def held(brand, group_name):
    with brand.scope():
        rows = MemberTag.objects.filter(group__name=group_name).values_list("member__external_id", "tag__name", "source")
        return {(ext, tag) for ext, tag, source in rows if source == "automatic"}


def aov_bands(brand):
    with brand.scope():
        group = TagGroup.objects.create(name="客单价", kind="automatic", exclusive=True)
        for position, (name, rule) in enumerate([
            ("低", {"field": "aov", "op": "lt", "value": 100}),
            ("中", {"field": "aov", "op": "between", "value": [100, 300]}),
            ("高", {"field": "aov", "op": "gt", "value": 300}),
        ]):
            Tag.objects.create(group=group, name=name, rule=rule, position=position)
    return group


def test_automatic_tags_follow_the_metrics_and_log_every_gain_and_loss(brand):
    add_members(brand, [{"external_id": "A"}, {"external_id": "B"}, {"external_id": "C"}])
    add_orders(brand, [
        {"external_id": "A1", "member_external_id": "A", "total": Decimal("80.00")},
        {"external_id": "B1", "member_external_id": "B", "total": Decimal("500.00")},
    ])
    group = aov_bands(brand)
    with brand.scope():
        score_full(brand.tenant, AS_OF)
        first = refresh_automatic_tags(brand.tenant, AS_OF)
    assert first == {"added": 2, "removed": 0, "groups": 1}
    assert held(brand, "客单价") == {("A", "低"), ("B", "高")}

    later = AS_OF + timedelta(days=1)
    add_orders(brand, [{"external_id": "A2", "member_external_id": "A", "total": Decimal("400.00"),
                        "placed_at": later - timedelta(hours=1)}])
    with brand.scope():
        score_full(brand.tenant, later)
        second = refresh_automatic_tags(brand.tenant, later)
        log = list(TagChange.objects.filter(member__external_id="A").order_by("at", "action").values_list(
            "tag__name", "action", "source", "at"))
        group.refresh_from_db()
    assert second == {"added": 1, "removed": 1, "groups": 1}
    assert held(brand, "客单价") == {("A", "中"), ("B", "高")}
    assert log == [("低", "added", "automatic", AS_OF), ("中", "added", "automatic", later), ("低", "removed", "automatic", later)]
    assert group.refreshed_at == later


def test_a_refresh_with_nothing_changed_changes_nothing(brand):
    add_members(brand, [{"external_id": "A"}])
    add_orders(brand, [{"external_id": "A1", "member_external_id": "A", "total": Decimal("80.00")}])
    aov_bands(brand)
    with brand.scope():
        score_full(brand.tenant, AS_OF)
        refresh_automatic_tags(brand.tenant, AS_OF)
        again = refresh_automatic_tags(brand.tenant, AS_OF + timedelta(hours=1))
        assert TagChange.objects.count() == 1
    assert again == {"added": 0, "removed": 0, "groups": 1}


def test_a_changed_rule_takes_tags_away_from_members_it_no_longer_fits(brand):
    add_members(brand, [{"external_id": "F", "gender": "female"}, {"external_id": "M", "gender": "male"}])
    with brand.scope():
        group = TagGroup.objects.create(name="性别", kind="automatic")
        tag = Tag.objects.create(group=group, name="女", rule={"field": "gender", "op": "eq", "value": "female"})
        refresh_automatic_tags(brand.tenant, AS_OF)
        tag.rule = {"field": "gender", "op": "eq", "value": "male"}
        tag.save()
        result = refresh_automatic_tags(brand.tenant, AS_OF)
    assert result["added"] == 1 and result["removed"] == 1
    assert held(brand, "性别") == {("M", "女")}


def test_an_incremental_refresh_touches_only_the_members_named(brand):
    ids = add_members(brand, [{"external_id": "F1", "gender": "female"}, {"external_id": "F2", "gender": "female"}])
    with brand.scope():
        group = TagGroup.objects.create(name="性别", kind="automatic")
        Tag.objects.create(group=group, name="女", rule={"field": "gender", "op": "eq", "value": "female"})
        refresh_automatic_tags(brand.tenant, AS_OF, member_ids=[ids[0]])
    assert held(brand, "性别") == {("F1", "女")}


def test_a_tag_can_follow_a_segment(brand):
    add_members(brand, [{"external_id": "SH", "city": "上海"}, {"external_id": "BJ", "city": "北京"}])
    segment = brand.api().post("/api/v1/segments/", {"name": "上海客", "rules": {"field": "city", "op": "eq", "value": "上海"}},
                               format="json").json()
    with brand.scope():
        group = TagGroup.objects.create(name="城市", kind="automatic")
        Tag.objects.create(group=group, name="上海", rule={"field": "segment", "op": "eq", "value": segment["id"]})
        refresh_automatic_tags(brand.tenant, AS_OF)
    assert held(brand, "城市") == {("SH", "上海")}


def test_the_end_of_a_lifecycle_run_refreshes_the_members_it_scored(brand, django_capture_on_commit_callbacks):
    ids = add_members(brand, [{"external_id": "A"}, {"external_id": "B"}])
    add_orders(brand, [
        {"external_id": "A1", "member_external_id": "A", "total": Decimal("80.00")},
        {"external_id": "B1", "member_external_id": "B", "total": Decimal("800.00")},
    ])
    aov_bands(brand)
    with brand.scope():
        run = score_full(brand.tenant, AS_OF)
    with django_capture_on_commit_callbacks(execute=True):
        run_finished.send(sender=None, tenant_id=brand.tenant.pk, run_id=run.pk, member_ids=[ids[0]])
    assert held(brand, "客单价") == {("A", "低")}
    with django_capture_on_commit_callbacks(execute=True):
        run_finished.send(sender=None, tenant_id=brand.tenant.pk, run_id=run.pk, member_ids=None)
    assert held(brand, "客单价") == {("A", "低"), ("B", "高")}
    with brand.scope():
        assert set(TagChange.objects.values_list("at", flat=True)) == {AS_OF}


def test_refreshing_everyone_is_a_fixed_number_of_statements(brand, django_assert_max_num_queries):
    add_members(brand, [{"external_id": f"X{i}"} for i in range(50)])
    with brand.scope():
        install_demo_tags(brand.tenant)
        score_full(brand.tenant, AS_OF)
        groups = TagGroup.objects.filter(kind="automatic").count()
        with django_assert_max_num_queries(5 + groups * 40):
            refresh_automatic_tags(brand.tenant, AS_OF)
        assert Member.objects.count() == 50


def test_the_demo_tags_install_both_kinds_and_tag_members(brand):
    add_members(brand, [
        {"external_id": "NEW", "joined_at": AS_OF - timedelta(days=3), "birthday": AS_OF.date().replace(year=1990),
         "source_channel": "parcel_card", "home_store": brand.store},
        {"external_id": "BUYER", "source_channel": "store_qr", "home_store": brand.store2},
    ])
    add_orders(brand, [
        {"external_id": f"B{i}", "member_external_id": "BUYER", "total": Decimal("350.00"), "store": brand.store2,
         "lines": [{"sku": "UT-AP01", "category": "apparel", "quantity": 1, "unit_price": Decimal("350.00"),
                    "amount": Decimal("350.00")}]}
        for i in range(6)
    ])
    with brand.scope():
        install_demo_tags(brand.tenant)
        install_demo_tags(brand.tenant)
        kinds = set(TagGroup.objects.values_list("kind", flat=True))
        score_full(brand.tenant, AS_OF)
        refresh_automatic_tags(brand.tenant, AS_OF)
        tags = {}
        for ext, name in MemberTag.objects.values_list("member__external_id", "tag__name"):
            tags.setdefault(ext, set()).add(name)
    assert kinds == {"manual", "automatic"}
    assert {"未购买", "引入期", "包裹卡", "35–44 岁"} <= tags["NEW"]
    assert {"高客单 ¥300 以上", "高频 6 次以上", "成熟期", "服装", "门店扫码", "基础款爱好者", brand.store2.name} <= tags["BUYER"]
    assert "本月生日成长成熟客" not in tags["NEW"]
