"""A member's WeCom external user id through the members API (single, bulk, 360), the CSV import
and the schema: one member per id in a brand, the same id free in another brand."""
import pytest
from rest_framework.test import APIClient

from members.models import Member
from tests.api_cases import assert_error, patch_json, post_json

from .test_api_members import make_members

pytestmark = pytest.mark.django_db

URL = "/api/v1/members/"
WX = "wmqPmWDAAAnV7xJ2oTgb3FqZ8tLwPvCQ"


def stored_id(brand, external_id):
    with brand.scope():
        return Member.objects.filter(external_id=external_id).values_list("wecom_external_userid", flat=True).first()


def test_a_member_created_with_a_wecom_external_userid_answers_it_everywhere(brand):
    created = post_json(brand.api(), URL, {"external_id": "W1", "name": "王芳", "wecom_external_userid": f"  {WX} "})

    assert created.status_code == 201, created.content
    assert created.json()["wecom_external_userid"] == WX
    assert stored_id(brand, "W1") == WX
    assert brand.api().get(f"{URL}{created.json()['id']}/").json()["wecom_external_userid"] == WX
    [row] = brand.api().get(URL).json()["results"]
    assert row["wecom_external_userid"] == WX


def test_a_member_without_one_answers_null(brand):
    created = post_json(brand.api(), URL, {"external_id": "W1", "wecom_external_userid": ""})
    assert created.status_code == 201, created.content
    assert created.json()["wecom_external_userid"] is None
    assert stored_id(brand, "W1") is None


def test_patch_sets_changes_and_clears_it(brand):
    [member] = make_members(brand, ["W1"])
    url = f"{URL}{member.pk}/"
    assert patch_json(brand.api(), url, {"wecom_external_userid": WX}).json()["wecom_external_userid"] == WX
    changed = patch_json(brand.api(), url, {"wecom_external_userid": "wmOTHER"})
    assert changed.json()["wecom_external_userid"] == "wmOTHER"
    assert patch_json(brand.api(), url, {"name": "改名"}).json()["wecom_external_userid"] == "wmOTHER"
    assert patch_json(brand.api(), url, {"wecom_external_userid": None}).json()["wecom_external_userid"] is None
    assert stored_id(brand, "W1") is None


def test_an_id_another_member_holds_is_refused_on_the_field_and_names_that_member(brand):
    post_json(brand.api(), URL, {"external_id": "W1", "wecom_external_userid": WX})
    [other] = make_members(brand, ["W2"])

    created = post_json(brand.api(), URL, {"external_id": "W3", "wecom_external_userid": WX}, HTTP_ACCEPT_LANGUAGE="en")
    error = assert_error(created, 400, field="wecom_external_userid")
    assert error["fields"]["wecom_external_userid"] == ["This WeCom external user id already belongs to member W1."]
    assert stored_id(brand, "W3") is None

    changed = patch_json(brand.api(), f"{URL}{other.pk}/", {"wecom_external_userid": WX})
    assert_error(changed, 400, field="wecom_external_userid")
    assert stored_id(brand, "W2") is None
    # The holder may send its own id again.
    assert post_json(brand.api(), f"{URL}bulk/", [{"external_id": "W1", "wecom_external_userid": WX}]).json()[
        "results"][0]["status"] == "unchanged"


def test_a_bulk_item_with_a_taken_or_repeated_id_fails_alone(brand):
    post_json(brand.api(), URL, {"external_id": "W1", "wecom_external_userid": WX})
    answer = post_json(brand.api(), f"{URL}bulk/", [
        {"external_id": "W2", "wecom_external_userid": "wmA"},
        {"external_id": "W3", "wecom_external_userid": WX},
        {"external_id": "W4", "wecom_external_userid": "wmA"},
        {"external_id": "W5", "wecom_external_userid": "wmB"},
    ])

    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["created", "error", "error", "created"]
    assert set(results[1]["errors"]) == {"wecom_external_userid"}
    assert set(results[2]["errors"]) == {"wecom_external_userid"}
    assert [stored_id(brand, k) for k in ("W2", "W3", "W4", "W5")] == ["wmA", None, None, "wmB"]


def test_blank_ids_and_mobiles_are_none_so_many_members_can_leave_them_blank(brand):
    for key in ("W1", "W2"):
        answer = post_json(brand.api(), URL, {"external_id": key, "mobile": "", "wecom_external_userid": " "})
        assert answer.status_code == 201, answer.content
        assert (answer.json()["mobile"], answer.json()["wecom_external_userid"]) == (None, None)
    with brand.scope():
        assert list(Member.objects.values_list("mobile", "wecom_external_userid")) == [(None, None), (None, None)]


def test_an_id_longer_than_64_characters_is_refused(brand):
    assert_error(post_json(brand.api(), URL, {"external_id": "W1", "wecom_external_userid": "w" * 65}), 400,
                 field="wecom_external_userid")


def test_the_same_id_in_another_brand_is_another_member(brand, other_brand):
    theirs = post_json(other_brand.api(), URL, {"external_id": "W1", "wecom_external_userid": WX})
    mine = post_json(brand.api(), URL, {"external_id": "W9", "wecom_external_userid": WX})

    assert theirs.status_code == 201 and mine.status_code == 201, mine.content
    assert stored_id(brand, "W9") == WX and stored_id(other_brand, "W1") == WX
    assert_error(patch_json(brand.api(), f"{URL}{theirs.json()['id']}/", {"wecom_external_userid": "wmX"}), 404)
    assert stored_id(other_brand, "W1") == WX


def test_the_schema_documents_the_field_on_members(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}, HTTP_ACCEPT_LANGUAGE="en").json()
    for name in ("Member", "Member360", "MemberRequest", "MemberUpsertRequest", "PatchedMemberRequest"):
        field = schema["components"]["schemas"][name]["properties"]["wecom_external_userid"]
        assert field["nullable"] is True and field["maxLength"] == 64
        assert "WeCom external user id" in field["description"]


def test_a_csv_import_takes_the_column(brand, tmp_path, settings):
    from django.core.management import call_command

    settings.IMPORT_DIR = tmp_path / "imports"
    path = tmp_path / "members.csv"
    path.write_text(f"external_id,name,wecom_external_userid\nW1,王芳,{WX}\nW2,李娜,{WX}\n", encoding="utf-8")

    call_command("import_members", str(path), "--tenant", "acme", stdout=None)

    assert stored_id(brand, "W1") == WX
    assert stored_id(brand, "W2") is None
