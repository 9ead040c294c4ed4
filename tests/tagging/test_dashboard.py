import json

from tagging.demo import install_demo_tags
from tagging.models import MemberTag, Segment, Tag, TagGroup

from .conftest import add_members


def test_the_segment_pages_render_for_an_operator(brand):
    add_members(brand, [{"external_id": "F", "gender": "female"}])
    with brand.scope():
        install_demo_tags(brand.tenant)
        segment = Segment.objects.get(name="入会 60 天内未购买")
        group = TagGroup.objects.get(name="客单价")
        tag = Tag.objects.filter(group=group).first()
    client = brand.session(brand.operator)
    for url in ["/tagging/", "/tagging/segments/", "/tagging/segments/new/", f"/tagging/segments/{segment.pk}/",
                f"/tagging/segments/{segment.pk}/edit/", f"/tagging/segments/{segment.pk}/count/", "/tagging/tags/",
                f"/tagging/tags/{group.pk}/", "/tagging/tags/new/", f"/tagging/tags/{group.pk}/tags/new/",
                f"/tagging/tags/{group.pk}/tags/{tag.pk}/edit/", "/tagging/bulk/?store_id=" + str(brand.store.pk)]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert "入会 60 天内未购买" in client.get("/tagging/segments/").content.decode()


def test_the_builder_saves_a_segment_from_its_json(brand):
    add_members(brand, [{"external_id": "F", "gender": "female"}, {"external_id": "M", "gender": "male"}])
    client = brand.session(brand.operator)
    rules = {"any": [{"field": "gender", "op": "eq", "value": "female"}]}
    response = client.post("/tagging/segments/new/", {"name": "女性", "description": "", "rules": json.dumps(rules)})
    assert response.status_code == 302
    with brand.scope():
        segment = Segment.objects.get(name="女性")
    assert segment.rules == rules
    page = client.get(f"/tagging/segments/{segment.pk}/").content.decode()
    assert '<span class="small text-secondary mono">F</span>' in page
    assert '<span class="small text-secondary mono">M</span>' not in page


def test_the_builder_shows_path_named_errors_instead_of_saving(brand):
    client = brand.session(brand.operator)
    rules = {"all": [{"field": "gender", "op": "eq", "value": "alien"}]}
    response = client.post("/tagging/segments/new/", {"name": "x", "description": "", "rules": json.dumps(rules)})
    assert response.status_code == 200
    assert "rules.all[0].value" in response.content.decode()


def test_the_live_count_answers_the_count_or_the_errors(brand):
    add_members(brand, [{"external_id": "F", "gender": "female"}])
    client = brand.session(brand.operator)
    ok = client.post("/tagging/segments/preview/", json.dumps({"field": "gender", "op": "eq", "value": "female"}),
                     content_type="application/json")
    assert ok.json() == {"count": 1}
    bad = client.post("/tagging/segments/preview/", json.dumps({"any": [{"field": "nope"}]}), content_type="application/json")
    assert bad.status_code == 400 and "rules.any[0].field" in bad.json()["errors"]


def test_a_guide_may_look_but_not_design(brand):
    client = brand.session(brand.guide)
    assert client.get("/tagging/segments/").status_code == 200
    assert client.get("/tagging/segments/new/").status_code == 403
    assert client.get("/tagging/tags/new/").status_code == 403


def test_the_bulk_action_tags_the_members_of_the_lists_filter(brand):
    ids = add_members(brand, [
        {"external_id": "A", "home_store": brand.store}, {"external_id": "B", "home_store": brand.store2},
    ])
    with brand.scope():
        install_demo_tags(brand.tenant)
        koc = Tag.objects.get(name="KOC")
    client = brand.session(brand.operator)
    page = client.get(f"/tagging/bulk/?store_id={brand.store.pk}")
    assert page.context["count"] == 1
    response = client.post(f"/tagging/bulk/?store_id={brand.store.pk}", {"add": [koc.pk]})
    assert response.status_code == 302 and response["Location"].endswith(f"?store_id={brand.store.pk}")
    with brand.scope():
        assert list(MemberTag.objects.values_list("member_id", flat=True)) == [ids[0]]


def test_a_guide_adds_and_removes_a_tag_on_their_members_card(brand):
    ids = add_members(brand, [{"external_id": "MINE", "owner_guide": brand.guide}, {"external_id": "X", "owner_guide": brand.guide2}])
    with brand.scope():
        install_demo_tags(brand.tenant)
        koc = Tag.objects.get(name="KOC")
        automatic = Tag.objects.filter(group__kind="automatic").first()
    client = brand.session(brand.guide)
    panel = client.post(f"/tagging/members/{ids[0]}/tags/", {"action": "add", "tag": koc.pk}, HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and "KOC" in panel.content.decode()
    refused = client.post(f"/tagging/members/{ids[0]}/tags/", {"action": "add", "tag": automatic.pk})
    assert refused.status_code == 400
    assert client.post(f"/tagging/members/{ids[1]}/tags/", {"action": "add", "tag": koc.pk}).status_code == 404
    client.post(f"/tagging/members/{ids[0]}/tags/", {"action": "remove", "tag": koc.pk})
    with brand.scope():
        assert not MemberTag.objects.exists()


def test_another_brands_segment_and_group_pages_are_not_found(brand, other_brand):
    with other_brand.scope():
        install_demo_tags(other_brand.tenant)
        segment = Segment.objects.first()
        group = TagGroup.objects.first()
    client = brand.session(brand.operator)
    for url in [f"/tagging/segments/{segment.pk}/", f"/tagging/segments/{segment.pk}/export/", f"/tagging/tags/{group.pk}/",
                f"/tagging/segments/{segment.pk}/count/"]:
        assert client.get(url).status_code == 404, url
