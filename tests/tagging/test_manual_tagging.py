from members.models import Member
from tagging.models import MemberTag, Tag, TagChange, TagGroup, TagSource
from tagging.services import apply_tags

from .conftest import add_members


def make_group(brand, name="兴趣", **extra):
    response = brand.api().post("/api/v1/tag-groups/", {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def make_tag(brand, group_id, name, **extra):
    response = brand.api().post("/api/v1/tags/", {"group": group_id, "name": name, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def tags_of(brand, member_id):
    with brand.scope():
        return set(MemberTag.objects.filter(member_id=member_id).values_list("tag__name", flat=True))


def test_an_operator_creates_a_group_and_its_tags(brand):
    group = make_group(brand, exclusive=True, description="尺码")
    tag = make_tag(brand, group["id"], "M码", colour="#1F77B4")
    assert tag["colour"] == "#1f77b4"
    listed = brand.api().get(f"/api/v1/tags/?group_id={group['id']}").json()
    assert [t["name"] for t in listed["results"]] == ["M码"]
    assert brand.api().get(f"/api/v1/tag-groups/{group['id']}/").json()["tag_count"] == 1


def test_group_and_tag_names_are_unique_within_their_scope(brand):
    group = make_group(brand)
    other = make_group(brand, name="渠道")
    make_tag(brand, group["id"], "KOC")
    assert brand.api().post("/api/v1/tag-groups/", {"name": "兴趣"}, format="json").status_code == 400
    response = brand.api().post("/api/v1/tags/", {"group": group["id"], "name": "KOC"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]
    make_tag(brand, other["id"], "KOC")


def test_the_same_names_are_free_in_another_brand(brand, other_brand):
    make_group(brand)
    make_group(other_brand)


def test_a_tag_cannot_be_put_in_another_brands_group(brand, other_brand):
    theirs = make_group(other_brand)
    response = brand.api().post("/api/v1/tags/", {"group": theirs["id"], "name": "x"}, format="json")
    assert response.status_code == 400
    assert "group" in response.json()["error"]["fields"]


def test_another_brands_groups_and_tags_are_not_found(brand, other_brand):
    group = make_group(other_brand)
    tag = make_tag(other_brand, group["id"], "VIP")
    assert brand.api().get(f"/api/v1/tag-groups/{group['id']}/").status_code == 404
    assert brand.api().get(f"/api/v1/tags/{tag['id']}/").status_code == 404
    assert brand.api().get("/api/v1/tags/").json()["results"] == []


def test_a_tag_added_to_one_member_records_source_who_and_when(brand, members):
    group = make_group(brand)
    tag = make_tag(brand, group["id"], "KOC")
    client = brand.session(brand.operator)
    response = client.post(f"/api/v1/members/{members[0]}/tags/", {"tag": tag["id"]}, format="json")
    assert response.status_code == 201
    [held] = response.json()
    assert held["tag_name"] == "KOC"
    assert held["source"] == "manual"
    assert held["added_by_name"] == "运营"
    assert held["added_at"]
    listed = client.get(f"/api/v1/members/{members[0]}/tags/").json()
    assert [t["tag"] for t in listed] == [tag["id"]]


def test_removing_a_members_tag_logs_the_loss(brand, members):
    group = make_group(brand)
    tag = make_tag(brand, group["id"], "KOC")
    client = brand.session(brand.operator)
    client.post(f"/api/v1/members/{members[0]}/tags/", {"tag": tag["id"]}, format="json")
    assert client.delete(f"/api/v1/members/{members[0]}/tags/{tag['id']}/").status_code == 204
    assert tags_of(brand, members[0]) == set()
    changes = client.get(f"/api/v1/tag-changes/?member_id={members[0]}").json()["results"]
    assert [(c["action"], c["staff_name"]) for c in changes] == [("removed", "运营"), ("added", "运营")]


def test_bulk_apply_adds_and_removes_for_an_id_list(brand, members):
    group = make_group(brand)
    koc = make_tag(brand, group["id"], "KOC")
    vip = make_tag(brand, group["id"], "VIP")
    api = brand.api()
    response = api.post("/api/v1/tags/apply/", {"add": [koc["id"], vip["id"]], "member_ids": members[:4]}, format="json")
    assert response.json() == {"added": 8, "removed": 0}
    again = api.post("/api/v1/tags/apply/", {"add": [koc["id"]], "remove": [vip["id"]], "member_ids": members[:2]}, format="json")
    assert again.json() == {"added": 0, "removed": 2}
    assert tags_of(brand, members[0]) == {"KOC"}
    assert tags_of(brand, members[3]) == {"KOC", "VIP"}
    assert tags_of(brand, members[5]) == set()


def test_bulk_apply_takes_the_members_lists_filter(brand):
    ids = add_members(brand, [
        {"external_id": "A", "home_store": brand.store}, {"external_id": "B", "home_store": brand.store2},
    ])
    tag = make_tag(brand, make_group(brand)["id"], "门店粉丝")
    response = brand.api().post(
        "/api/v1/tags/apply/", {"add": [tag["id"]], "filter": {"store_id": brand.store.pk}}, format="json"
    )
    assert response.json()["added"] == 1
    assert tags_of(brand, ids[0]) == {"门店粉丝"} and tags_of(brand, ids[1]) == set()


def test_a_bad_filter_names_the_filter_field(brand, members):
    tag = make_tag(brand, make_group(brand)["id"], "x")
    response = brand.api().post("/api/v1/tags/apply/", {"add": [tag["id"]], "filter": {"store_id": 999999}}, format="json")
    assert response.status_code == 400
    assert "filter.store_id" in response.json()["error"]["fields"]


def test_bulk_apply_takes_a_segment(brand):
    ids = add_members(brand, [{"external_id": "F", "gender": "female"}, {"external_id": "X", "gender": "male"}])
    segment = brand.api().post(
        "/api/v1/segments/", {"name": "女性", "rules": {"field": "gender", "op": "eq", "value": "female"}}, format="json"
    ).json()
    tag = make_tag(brand, make_group(brand)["id"], "女")
    response = brand.api().post("/api/v1/tags/apply/", {"add": [tag["id"]], "segment": segment["id"]}, format="json")
    assert response.json()["added"] == 1
    assert tags_of(brand, ids[0]) == {"女"}


def test_a_guide_tags_only_their_own_members(brand):
    ids = add_members(brand, [
        {"external_id": "MINE", "owner_guide": brand.guide}, {"external_id": "THEIRS", "owner_guide": brand.guide2},
    ])
    tag = make_tag(brand, make_group(brand)["id"], "已联系")
    client = brand.session(brand.guide)
    response = client.post("/api/v1/tags/apply/", {"add": [tag["id"]], "member_ids": ids}, format="json")
    assert response.json()["added"] == 1
    assert tags_of(brand, ids[1]) == set()
    assert client.post(f"/api/v1/members/{ids[1]}/tags/", {"tag": tag["id"]}, format="json").status_code == 404


def test_adding_a_tag_of_an_exclusive_group_replaces_the_others(brand, members):
    group = make_group(brand, name="尺码", exclusive=True)
    small = make_tag(brand, group["id"], "S")
    medium = make_tag(brand, group["id"], "M")
    api = brand.api()
    api.post("/api/v1/tags/apply/", {"add": [small["id"]], "member_ids": members[:3]}, format="json")
    response = api.post("/api/v1/tags/apply/", {"add": [medium["id"]], "member_ids": members[:2]}, format="json")
    assert response.json() == {"added": 2, "removed": 2}
    assert tags_of(brand, members[0]) == {"M"} and tags_of(brand, members[2]) == {"S"}
    both = api.post("/api/v1/tags/apply/", {"add": [small["id"], medium["id"]], "member_ids": members}, format="json")
    assert both.status_code == 400


def test_tags_of_automatic_groups_cannot_be_given_by_hand(brand, members):
    group = make_group(brand, name="客单价", kind="automatic")
    tag = make_tag(brand, group["id"], "高", rule={"field": "aov", "op": "gte", "value": 300})
    response = brand.api().post("/api/v1/tags/apply/", {"add": [tag["id"]], "member_ids": members}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["add"]
    assert tags_of(brand, members[0]) == set()


def test_an_automatic_tag_needs_a_valid_rule_and_names_the_bad_path(brand):
    group = make_group(brand, name="客单价", kind="automatic")
    response = brand.api().post("/api/v1/tags/", {"group": group["id"], "name": "高"}, format="json")
    assert response.status_code == 400
    bad = brand.api().post(
        "/api/v1/tags/", {"group": group["id"], "name": "高", "rule": {"all": [{"field": "aov", "op": "gte", "value": "lots"}]}},
        format="json",
    )
    assert list(bad.json()["error"]["fields"]) == ["rule.all[0].value"]


def test_tagging_a_member_of_another_brand_does_nothing(brand, other_brand):
    theirs = add_members(other_brand, [{"external_id": "R1"}])
    tag = make_tag(brand, make_group(brand)["id"], "x")
    response = brand.api().post("/api/v1/tags/apply/", {"add": [tag["id"]], "member_ids": theirs}, format="json")
    assert response.json() == {"added": 0, "removed": 0}
    assert brand.api().get(f"/api/v1/members/{theirs[0]}/tags/").status_code == 404


def test_bulk_tagging_is_set_based_whatever_the_number_of_members(brand, django_assert_max_num_queries):
    add_members(brand, [{"external_id": f"B{i}"} for i in range(300)])
    with brand.scope():
        group = TagGroup.objects.create(name="活动")
        tag = Tag.objects.create(group=group, name="双11")
        with django_assert_max_num_queries(8):
            result = apply_tags(brand.tenant, Member.objects.all(), add=[tag.pk], source=TagSource.CAMPAIGN)
        assert result == {"added": 300, "removed": 0}
        assert TagChange.objects.filter(tag=tag, action="added", source="campaign").count() == 300
