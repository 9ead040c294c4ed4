"""What is deleted or archived here goes in WeCom too: corp tag groups and tags of deleted tag
groups and tags (by the next tag sync), and the contact way of an archived live code."""
import pytest
from django.utils import timezone

from campaigns import acquisition
from campaigns.models import LiveCode, WeComTagLink
from campaigns.wecom.tagsync import sync_tags
from campaigns.wecom.tasks import retry_contact_way_removals_all
from scrm.models import Staff
from tagging import services as tagging
from tagging.models import Tag, TagGroup
from tests.api_cases import assert_error, patch_json
from tests.campaigns.fake_wecom import FakeWeCom, configure, wecom  # noqa: F401 - wecom is a fixture

DEL_TAG = "/cgi-bin/externalcontact/del_corp_tag"
DEL_WAY = "/cgi-bin/externalcontact/del_contact_way"
ADD_WAY = "/cgi-bin/externalcontact/add_contact_way"
BUSY = -1

pytestmark = pytest.mark.django_db


def tag_groups(brand):
    """Two groups: 渠道来源 with two tags, 价格敏感度 with one."""
    with brand.scope():
        channel = tagging.save_tag_group(brand.tenant, {"name": "渠道来源", "position": 1})
        price = tagging.save_tag_group(brand.tenant, {"name": "价格敏感度", "position": 2})
        return {
            "channel": channel, "price": price,
            "parcel": tagging.save_tag(brand.tenant, {"group": channel, "name": "包裹卡"}),
            "store": tagging.save_tag(brand.tenant, {"group": channel, "name": "门店", "position": 1}),
            "deal": tagging.save_tag(brand.tenant, {"group": price, "name": "价格敏感"}),
        }


def sync(brand):
    with brand.scope():
        return sync_tags(brand.tenant, timezone.now())


def in_wecom(fake):
    return {g["group_name"]: sorted(t["name"] for t in g["tag"]) for g in fake.tag_groups.values()}


def links(brand):
    with brand.scope():
        return sorted(WeComTagLink.objects.values_list("name", flat=True))


# ---------------------------------------------------------------- tag groups and tags

def test_a_tag_group_deleted_through_the_api_is_deleted_in_wecom_by_the_next_sync(brand, wecom):
    configure(brand, wecom)
    made = tag_groups(brand)
    sync(brand)
    assert in_wecom(wecom) == {"渠道来源": ["包裹卡", "门店"], "价格敏感度": ["价格敏感"]}
    [group_id] = [gid for gid, g in wecom.tag_groups.items() if g["group_name"] == "渠道来源"]

    assert brand.api().delete(f"/api/v1/tag-groups/{made['channel'].pk}/").status_code == 204
    summary = sync(brand)

    assert summary["error"] == "" and summary["deleted"] == 1
    assert in_wecom(wecom) == {"价格敏感度": ["价格敏感"]}
    assert [r["body"] for r in wecom.calls(DEL_TAG)] == [{"group_id": [group_id]}]
    assert links(brand) == ["价格敏感", "价格敏感度"]


def test_a_deleted_tag_goes_in_wecom_and_its_link_with_it(brand, wecom):
    configure(brand, wecom)
    made = tag_groups(brand)
    sync(brand)
    assert brand.api().delete(f"/api/v1/tags/{made['store'].pk}/").status_code == 204

    assert sync(brand)["deleted"] == 1
    assert in_wecom(wecom) == {"渠道来源": ["包裹卡"], "价格敏感度": ["价格敏感"]}
    assert links(brand) == ["价格敏感", "价格敏感度", "包裹卡", "渠道来源"]
    # A third run has nothing left to delete.
    calls = len(wecom.calls(DEL_TAG))
    assert sync(brand)["deleted"] == 0 and len(wecom.calls(DEL_TAG)) == calls


def test_a_group_left_without_tags_goes_in_wecom_and_comes_back_with_a_new_tag(brand, wecom):
    configure(brand, wecom)
    made = tag_groups(brand)
    sync(brand)
    with brand.scope():
        Tag.objects.filter(pk=made["deal"].pk).delete()

    assert sync(brand)["deleted"] == 1
    assert in_wecom(wecom) == {"渠道来源": ["包裹卡", "门店"]}
    assert "价格敏感度" not in links(brand)

    with brand.scope():
        tagging.save_tag(brand.tenant, {"group": made["price"], "name": "高客单"})
    summary = sync(brand)
    assert summary["error"] == "" and summary["groups_created"] == 1
    assert in_wecom(wecom) == {"渠道来源": ["包裹卡", "门店"], "价格敏感度": ["高客单"]}


def test_a_tag_deleted_while_another_takes_its_place_leaves_one_group_in_wecom(brand, wecom):
    configure(brand, wecom)
    made = tag_groups(brand)
    sync(brand)
    with brand.scope():
        Tag.objects.filter(pk=made["deal"].pk).delete()
        tagging.save_tag(brand.tenant, {"group": made["price"], "name": "高客单"})

    summary = sync(brand)

    assert summary["error"] == ""
    assert in_wecom(wecom) == {"渠道来源": ["包裹卡", "门店"], "价格敏感度": ["高客单"]}


def test_wecom_down_at_the_sync_keeps_the_deletion_for_the_next_run(brand, wecom):
    configure(brand, wecom)
    made = tag_groups(brand)
    sync(brand)
    with brand.scope():
        TagGroup.objects.filter(pk=made["channel"].pk).delete()
    wecom.fail_next(BUSY, path=DEL_TAG)

    first = sync(brand)

    assert "-1" in first["error"] and first["deleted"] == 0
    with brand.scope():
        assert not TagGroup.objects.filter(pk=made["channel"].pk).exists()
    assert "渠道来源" in in_wecom(wecom) and "渠道来源" in links(brand)

    second = sync(brand)
    assert second["error"] == "" and second["deleted"] == 1
    assert in_wecom(wecom) == {"价格敏感度": ["价格敏感"]}
    assert links(brand) == ["价格敏感", "价格敏感度"]


def test_a_group_already_deleted_in_wecom_is_only_forgotten(brand, wecom):
    configure(brand, wecom)
    made = tag_groups(brand)
    sync(brand)
    [gone] = [gid for gid, g in wecom.tag_groups.items() if g["group_name"] == "渠道来源"]
    del wecom.tag_groups[gone]
    with brand.scope():
        TagGroup.objects.filter(pk=made["channel"].pk).delete()

    summary = sync(brand)

    assert summary["error"] == "" and summary["deleted"] == 0
    assert wecom.calls(DEL_TAG) == []
    assert links(brand) == ["价格敏感", "价格敏感度"]


def test_deleting_another_brands_tag_group_is_a_404_and_their_wecom_copy_stays(brand, other_brand, wecom):
    configure(brand, wecom)
    mine = tag_groups(brand)
    sync(brand)
    with FakeWeCom(corp_id=wecom.corp_id, secret=wecom.secret) as theirs_fake:
        configure(other_brand, theirs_fake)
        theirs = tag_groups(other_brand)
        sync(other_brand)

        assert_error(brand.api().delete(f"/api/v1/tag-groups/{theirs['channel'].pk}/"), 404)
        assert brand.api().delete(f"/api/v1/tag-groups/{mine['channel'].pk}/").status_code == 204
        sync(brand)
        assert sync(other_brand)["deleted"] == 0

        assert in_wecom(theirs_fake) == {"渠道来源": ["包裹卡", "门店"], "价格敏感度": ["价格敏感"]}
        assert theirs_fake.calls(DEL_TAG) == []
        assert len(links(other_brand)) == 5
    assert in_wecom(wecom) == {"价格敏感度": ["价格敏感"]}


# ---------------------------------------------------------------- live codes

@pytest.fixture
def guides(brand):
    with brand.scope():
        Staff.objects.filter(pk=brand.guide.pk).update(wecom_userid="zhangwei")
        Staff.objects.filter(pk=brand.guide2.pk).update(wecom_userid="lina")
        brand.guide.refresh_from_db()
        brand.guide2.refresh_from_db()
    return brand


def live_code(brand, name="收银台"):
    with brand.scope():
        return acquisition.save_live_code(brand.tenant, {
            "name": name, "channel_type": "store_cashier", "store": brand.store, "pool": [brand.guide, brand.guide2],
        }, as_of=timezone.now())


def stored(brand, code):
    with brand.scope():
        return LiveCode.objects.get(pk=code.pk)


def test_archiving_a_code_through_the_api_deletes_its_wecom_contact_way(guides, wecom):
    brand = guides
    configure(brand, wecom)
    code = live_code(brand)
    config_id = code.wecom_config_id
    assert config_id in wecom.contact_ways

    answer = patch_json(brand.api(), f"/api/v1/live-codes/{code.pk}/", {"status": "archived"})

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["status"], body["wecom_config_id"], body["wecom_qr_url"], body["wecom_sync_error"]) == (
        "archived", "", "", "")
    assert config_id not in wecom.contact_ways
    assert [r["body"] for r in wecom.calls(DEL_WAY)] == [{"config_id": config_id}]
    assert stored(brand, code).wecom_config_id == ""


def test_archiving_on_the_codes_page_deletes_the_contact_way_and_activating_makes_a_new_one(guides, wecom):
    brand = guides
    configure(brand, wecom)
    code = live_code(brand)
    old = code.wecom_config_id
    client = brand.session(brand.operator)

    client.post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "archived"})
    assert old not in wecom.contact_ways and stored(brand, code).wecom_config_id == ""
    page = client.get(f"/campaigns/live-codes/{code.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="wecom-removed"' in page

    client.post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "active"})
    again = stored(brand, code)
    assert again.status == "active" and again.wecom_config_id and again.wecom_config_id != old
    assert wecom.contact_ways[again.wecom_config_id]["state"] == code.code
    assert wecom.contact_ways[again.wecom_config_id]["user"] == ["zhangwei", "lina"]


def test_pausing_a_code_keeps_its_contact_way(guides, wecom):
    brand = guides
    configure(brand, wecom)
    code = live_code(brand)
    brand.session(brand.operator).post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "paused"})
    assert stored(brand, code).wecom_config_id in wecom.contact_ways
    assert wecom.calls(DEL_WAY) == []


def test_an_archive_while_wecom_is_down_still_archives_and_the_removal_is_retried(guides, wecom):
    brand = guides
    configure(brand, wecom)
    code = live_code(brand)
    config_id = code.wecom_config_id
    wecom.fail_next(BUSY, path=DEL_WAY)

    answer = brand.session(brand.operator).post(
        f"/campaigns/live-codes/{code.pk}/status/", {"status": "archived"}, HTTP_ACCEPT_LANGUAGE="en", follow=True)

    kept = stored(brand, code)
    assert kept.status == "archived"
    assert kept.wecom_config_id == config_id and "-1" in kept.wecom_sync_error
    assert config_id in wecom.contact_ways
    assert "WeCom did not remove the code&#x27;s contact way yet" in answer.content.decode()
    assert 'data-testid="wecom-error"' in answer.content.decode()

    retry_contact_way_removals_all.delay()

    done = stored(brand, code)
    assert (done.status, done.wecom_config_id, done.wecom_sync_error) == ("archived", "", "")
    assert config_id not in wecom.contact_ways


def test_the_retry_stops_at_a_busy_wecom_and_the_next_run_carries_on(guides, wecom):
    brand = guides
    configure(brand, wecom)
    codes = [live_code(brand, name=f"码{i}") for i in range(3)]
    wecom.fail_next(BUSY, 3, path=DEL_WAY)
    for code in codes:
        patch_json(brand.api(), f"/api/v1/live-codes/{code.pk}/", {"status": "archived"})
    assert all(stored(brand, c).wecom_config_id for c in codes)
    wecom.fail_next(BUSY, path=DEL_WAY)
    calls = len(wecom.calls(DEL_WAY))

    with brand.scope():
        first = acquisition.retry_contact_way_removals(brand.tenant, timezone.now())

    assert first == {"removed": 0, "failed": 1} and len(wecom.calls(DEL_WAY)) == calls + 1
    with brand.scope():
        assert acquisition.retry_contact_way_removals(brand.tenant, timezone.now()) == {"removed": 3, "failed": 0}
    assert wecom.contact_ways == {}


def test_a_contact_way_wecom_no_longer_knows_is_cleared(guides, wecom):
    brand = guides
    configure(brand, wecom)
    code = live_code(brand)
    del wecom.contact_ways[code.wecom_config_id]

    patch_json(brand.api(), f"/api/v1/live-codes/{code.pk}/", {"status": "archived"})

    assert (stored(brand, code).wecom_config_id, stored(brand, code).wecom_sync_error) == ("", "")


def test_saving_an_archived_code_makes_no_contact_way(guides, wecom):
    brand = guides
    configure(brand, wecom)
    code = live_code(brand)
    patch_json(brand.api(), f"/api/v1/live-codes/{code.pk}/", {"status": "archived"})
    answer = patch_json(brand.api(), f"/api/v1/live-codes/{code.pk}/", {"name": "旧收银台", "pool": [brand.guide.pk]})
    assert answer.status_code == 200, answer.content
    assert answer.json()["wecom_config_id"] == "" and wecom.contact_ways == {}
    assert len(wecom.calls(ADD_WAY)) == 1


def test_archiving_another_brands_code_is_a_404_and_leaves_its_contact_way(guides, other_brand, wecom):
    brand = guides
    configure(brand, wecom)
    mine = live_code(brand)
    with other_brand.scope():
        Staff.objects.filter(pk=other_brand.guide.pk).update(wecom_userid="wangwu")
        other_brand.guide.refresh_from_db()
    with FakeWeCom(corp_id=wecom.corp_id, secret=wecom.secret) as theirs_fake:
        configure(other_brand, theirs_fake)
        theirs = live_code(other_brand)
        wecom.fail_next(BUSY, path=DEL_WAY)
        patch_json(brand.api(), f"/api/v1/live-codes/{mine.pk}/", {"status": "archived"})
        theirs_fake.fail_next(BUSY, path=DEL_WAY)
        patch_json(other_brand.api(), f"/api/v1/live-codes/{theirs.pk}/", {"status": "archived"})
        waiting = stored(other_brand, theirs).wecom_config_id
        assert waiting in theirs_fake.contact_ways

        assert_error(patch_json(brand.api(), f"/api/v1/live-codes/{theirs.pk}/", {"status": "active"}), 404)
        with brand.scope():
            assert acquisition.retry_contact_way_removals(brand.tenant, timezone.now()) == {"removed": 1, "failed": 0}

        assert stored(other_brand, theirs).wecom_config_id == waiting
        assert waiting in theirs_fake.contact_ways
        assert theirs_fake.calls(DEL_WAY)[1:] == []
