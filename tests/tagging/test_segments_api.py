import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tagging.conditions import ConditionError
from tagging.models import Segment, SnapshotMember
from tagging.services import members_matching

from .conftest import add_members


def create_segment(brand, rules, name="人群", client=None):
    return (client or brand.api()).post("/api/v1/segments/", {"name": name, "rules": rules}, format="json")


def fields_of(response):
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


FEMALE = {"field": "gender", "op": "eq", "value": "female"}


def test_a_segment_is_saved_counted_and_listed(brand):
    add_members(brand, [{"external_id": f"F{i}", "gender": "female"} for i in range(3)] + [{"external_id": "X", "gender": "male"}])
    segment = create_segment(brand, {"all": [FEMALE]}).json()
    count = brand.api().get(f"/api/v1/segments/{segment['id']}/count/").json()
    assert count["count"] == 3
    listed = brand.api().get("/api/v1/segments/").json()["results"][0]
    assert listed["last_count"] == 3 and listed["last_evaluated_at"]
    members = brand.api().get(f"/api/v1/segments/{segment['id']}/members/").json()["results"]
    assert sorted(m["external_id"] for m in members) == ["F0", "F1", "F2"]


def test_the_builder_previews_a_count_before_saving(brand):
    add_members(brand, [{"external_id": "F", "gender": "female"}, {"external_id": "M", "gender": "male"}])
    response = brand.api().post("/api/v1/segments/preview/", {"rules": {"not": FEMALE}}, format="json")
    assert response.json()["count"] == 1


def test_the_field_catalogue_lists_fields_operators_and_choices(brand):
    catalogue = {f["field"]: f for f in brand.api().get("/api/v1/segments/fields/").json()}
    assert "between" in catalogue["aov"]["ops"]
    assert ["female", "Female"] in catalogue["gender"]["choices"] or any(c[0] == "female" for c in catalogue["gender"]["choices"])
    assert {"stage", "tags", "coupon_expiring", "event_count", "spend_share", "birthday_month"} <= set(catalogue)


@pytest.mark.parametrize("rules, path", [
    ({"any": [FEMALE, FEMALE, {"field": "gender", "op": "eq", "value": 3}]}, "rules.any[2].value"),
    ({"all": [{"field": "shoe_size", "op": "eq", "value": 1}]}, "rules.all[0].field"),
    ({"all": [{"field": "gender", "op": "gt", "value": "female"}]}, "rules.all[0].op"),
    ({"not": {"field": "orders_total", "op": "gte", "value": "many"}}, "rules.not.value"),
    ({"all": [{"field": "orders_total", "op": "between", "value": [5, 1]}]}, "rules.all[0].value"),
    ({"all": [{"field": "joined_at", "op": "gte", "value": "2026-13-01"}]}, "rules.all[0].value"),
    ({"all": [{"field": "event_count", "event": "telepathy", "days": 30, "op": "gte", "value": 1}]}, "rules.all[0].event"),
    ({"all": [{"field": "city", "op": "eq", "value": "上海" * 200}]}, "rules.all[0].value"),
    ({"all": [{"field": "city", "op": "in", "value": ["x"] * 5000}]}, "rules.all[0].value"),
    ({"all": [{"field": "orders_total", "op": "gte", "value": True}]}, "rules.all[0].value"),
    ({"all": []}, "rules.all"),
    ({"all": [FEMALE], "any": [FEMALE]}, "rules"),
    ([FEMALE], "rules"),
])
def test_a_bad_tree_is_a_400_naming_the_path_of_the_node(brand, rules, path):
    assert path in fields_of(create_segment(brand, rules))


def test_deep_nesting_is_refused(brand):
    rules = FEMALE
    for _ in range(20):
        rules = {"not": rules}
    errors = fields_of(create_segment(brand, rules))
    assert list(errors) == ["rules" + ".not" * 7]


def test_json_nested_beyond_what_a_parser_follows_is_a_400(brand):
    body = '{"name": "x", "rules": ' + '{"not": ' * 100_000 + "{}" + "}" * 100_001
    response = brand.api().post("/api/v1/segments/", body, content_type="application/json")
    assert response.status_code == 400


def test_sql_in_strings_is_only_text(brand):
    add_members(brand, [{"external_id": "A", "city": "上海"}])
    hostile = "上海'; DROP TABLE members_member; --"
    response = brand.api().post("/api/v1/segments/preview/", {"rules": {"field": "city", "op": "eq", "value": hostile}}, format="json")
    assert response.json()["count"] == 0
    with brand.scope():
        from members.models import Member

        assert Member.objects.count() == 1


def test_a_segment_naming_another_brands_tag_or_store_is_rejected(brand, other_brand):
    group = other_brand.api().post("/api/v1/tag-groups/", {"name": "g"}, format="json").json()
    tag = other_brand.api().post("/api/v1/tags/", {"group": group["id"], "name": "t"}, format="json").json()
    errors = fields_of(create_segment(brand, {"any": [
        {"field": "tags", "op": "has_any", "value": [tag["id"]]},
        {"field": "home_store", "op": "eq", "value": other_brand.store.pk},
    ]}))
    assert set(errors) == {"rules.any[0].value", "rules.any[1].value"}


def test_another_brands_segment_is_not_found_and_cannot_be_named(brand, other_brand):
    theirs = create_segment(other_brand, FEMALE).json()
    for suffix in ("", "count/", "members/", "export/"):
        assert brand.api().get(f"/api/v1/segments/{theirs['id']}/{suffix}").status_code == 404
    assert brand.api().post(f"/api/v1/segments/{theirs['id']}/snapshot/").status_code == 404
    errors = fields_of(create_segment(brand, {"field": "segment", "op": "eq", "value": theirs["id"]}))
    assert "rules.value" in errors


def test_a_segment_cannot_contain_itself(brand):
    first = create_segment(brand, FEMALE, name="a").json()
    second = create_segment(brand, {"field": "segment", "op": "eq", "value": first["id"]}, name="b").json()
    response = brand.api().patch(
        f"/api/v1/segments/{first['id']}/", {"rules": {"field": "segment", "op": "eq", "value": second["id"]}}, format="json"
    )
    assert "rules" in fields_of(response)
    assert brand.api().delete(f"/api/v1/segments/{first['id']}/").status_code == 400


def test_hostile_values_of_every_wrong_type_are_refused_or_counted_never_a_crash(brand):
    junk = [None, True, 1.5e308, -1, "", "x" * 1000, [], [[]], {}, {"a": 1}, [None] * 3, "1; SELECT 1"]
    catalogue = brand.api().get("/api/v1/segments/fields/").json()
    with brand.scope():
        for spec in catalogue:
            for op in spec["ops"]:
                for value in junk:
                    node = {"field": spec["field"], "op": op, "value": value}
                    try:
                        members_matching(brand.tenant, {"any": [node]}, timezone.now()).count()
                    except ConditionError as exc:
                        assert all(path.startswith("rules.any[0]") for path in exc.errors), (node, exc.errors)


@pytest.mark.parametrize("rules", [
    {"field": "tags", "op": "has_any", "value": [None]},
    {"field": "spend_share", "op": "gte", "value": 60, "categories": "外套"},
    {"field": "event_count", "event": "message_replied", "days": 10**9, "op": "gte", "value": 1},
    {"field": "attribute", "key": "a' OR 1=1 --", "op": "eq", "value": "x"},
    {"field": "birthday_month", "op": "in", "value": [0, 13]},
    {"field": "aov", "op": "gt", "value": "NaN"},
    {"field": "coupon_expiring", "op": "within_next_days", "value": -7},
    {"all": [{"not": {"any": "nope"}}]},
    "SELECT * FROM members_member",
    None,
])
def test_hostile_json_through_the_api_is_a_400(brand, rules):
    response = brand.api().post("/api/v1/segments/preview/", {"rules": rules}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]


def test_a_snapshot_freezes_the_member_list_with_its_time(brand):
    add_members(brand, [{"external_id": "F1", "gender": "female"}])
    segment = create_segment(brand, FEMALE).json()
    snap = brand.api().post(f"/api/v1/segments/{segment['id']}/snapshot/").json()
    assert snap["member_count"] == 1 and snap["taken_at"]
    add_members(brand, [{"external_id": "F2", "gender": "female"}])
    assert brand.api().get(f"/api/v1/segments/{segment['id']}/count/").json()["count"] == 2
    with brand.scope():
        assert SnapshotMember.objects.filter(snapshot_id=snap["id"]).count() == 1
    listed = brand.api().get(f"/api/v1/segments/{segment['id']}/snapshots/").json()
    assert [s["member_count"] for s in listed] == [1]


def test_the_export_streams_csv_of_the_members(brand):
    add_members(brand, [{"external_id": "F1", "gender": "female", "name": "王芳", "mobile": "13800138000",
                         "home_store": brand.store}])
    segment = create_segment(brand, FEMALE).json()
    response = brand.api().get(f"/api/v1/segments/{segment['id']}/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["external_id"], r["name"], r["mobile"], r["store"]) for r in rows] == [
        ("F1", "王芳", "13800138000", brand.store.code)
    ]


def test_a_guide_counts_and_exports_only_their_own_members(brand):
    add_members(brand, [
        {"external_id": "MINE", "gender": "female", "owner_guide": brand.guide, "mobile": "13800138001"},
        {"external_id": "THEIRS", "gender": "female", "owner_guide": brand.guide2},
    ])
    segment = create_segment(brand, FEMALE).json()
    client = brand.session(brand.guide)
    assert client.get(f"/api/v1/segments/{segment['id']}/count/").json()["count"] == 1
    text = b"".join(client.get(f"/api/v1/segments/{segment['id']}/export/").streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["external_id"], r["mobile"]) for r in rows] == [("MINE", "138****8001")]


def test_relative_dates_count_back_from_now(brand):
    now = timezone.now()
    add_members(brand, [
        {"external_id": "NEW", "joined_at": now - timedelta(days=10)},
        {"external_id": "OLD", "joined_at": now - timedelta(days=100)},
    ])
    response = brand.api().post(
        "/api/v1/segments/preview/", {"rules": {"field": "joined_at", "op": "within_last_days", "value": 60}}, format="json"
    )
    assert response.json()["count"] == 1


def test_the_stored_rules_are_returned_as_sent(brand):
    rules = {"all": [FEMALE, {"field": "attribute", "key": "size", "op": "in", "value": ["M", "L"]}]}
    segment = create_segment(brand, rules).json()
    with brand.scope():
        assert Segment.objects.get(pk=segment["id"]).rules == rules
    assert json.loads(json.dumps(segment["rules"])) == rules
