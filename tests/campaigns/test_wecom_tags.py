"""Tag sync to WeCom corp tags and the WeCom part of the channel settings page."""
from django.utils import timezone

from campaigns.models import OutreachSettings, WeComTagLink
from campaigns.wecom.tagsync import sync_tags
from members.models import ContactStatus, Member
from tagging import services as tagging
from tagging.models import Tag
from tests.campaigns.fake_wecom import AES_KEY, SECRET, TOKEN, configure, wecom  # noqa: F401 - wecom is a fixture
from tests.campaigns.test_wecom import contact

MARK = "/cgi-bin/externalcontact/mark_tag"


def tags(brand):
    with brand.scope():
        channel = tagging.save_tag_group(brand.tenant, {"name": "渠道来源", "position": 1})
        price = tagging.save_tag_group(brand.tenant, {"name": "价格敏感度", "position": 2})
        tagging.save_tag_group(brand.tenant, {"name": "空组", "position": 3})
        made = {
            "parcel": tagging.save_tag(brand.tenant, {"group": channel, "name": "包裹卡"}),
            "store": tagging.save_tag(brand.tenant, {"group": channel, "name": "门店", "position": 1}),
            "deal": tagging.save_tag(brand.tenant, {"group": price, "name": "价格敏感"}),
        }
    return made


def give(brand, members, *tag_list, remove=()):
    with brand.scope():
        tagging.apply_tags(brand.tenant, Member.objects.filter(pk__in=[m.pk for m in members]),
                           add=[t.pk for t in tag_list], remove=[t.pk for t in remove])


def run(brand, batch=500):
    with brand.scope():
        return sync_tags(brand.tenant, timezone.now(), batch=batch)


def test_tag_groups_become_corp_tag_groups_and_contacts_are_marked(brand, wecom):
    configure(brand, wecom)
    made = tags(brand)
    lin = contact(brand, "wmLIN")
    zhou = contact(brand, "wmZHOU")
    no_guide_id = contact(brand, "wmNOID")
    with brand.scope():
        Member.objects.filter(pk=no_guide_id.pk).update(owner_guide=brand.guide2)
    give(brand, [lin, zhou, no_guide_id], made["parcel"])
    give(brand, [lin], made["deal"])

    summary = run(brand)

    assert summary["groups_created"] == 2 and summary["tags_created"] == 3 and summary["error"] == ""
    assert {g["group_name"]: [t["name"] for t in g["tag"]] for g in wecom.tag_groups.values()} == {
        "渠道来源": ["包裹卡", "门店"], "价格敏感度": ["价格敏感"],
    }
    assert wecom.tags_of("zhangsan", "wmLIN") == ["价格敏感", "包裹卡"]
    assert wecom.tags_of("zhangsan", "wmZHOU") == ["包裹卡"]
    # guide2 has no WeCom user id: nobody to mark the tag for.
    assert summary["contacts_marked"] == 2 and len(wecom.calls(MARK)) == 2


def test_a_second_sync_sends_only_what_changed(brand, wecom):
    configure(brand, wecom)
    made = tags(brand)
    lin, zhou = contact(brand, "wmLIN"), contact(brand, "wmZHOU")
    give(brand, [lin, zhou], made["parcel"])
    run(brand)
    calls = len(wecom.requests)

    assert run(brand)["contacts_marked"] == 0
    assert [r["path"] for r in wecom.requests[calls:]] == ["/cgi-bin/externalcontact/get_corp_tag_list"]

    give(brand, [lin], made["store"], remove=[made["parcel"]])
    with brand.scope():
        Tag.objects.filter(pk=made["deal"].pk).update(name="价格敏感型")
    summary = run(brand)
    assert summary["contacts_marked"] == 1 and summary["renamed"] == 1
    assert wecom.tags_of("zhangsan", "wmLIN") == ["门店"]
    assert wecom.tags_of("zhangsan", "wmZHOU") == ["包裹卡"]
    assert "价格敏感型" in [t["name"] for g in wecom.tag_groups.values() for t in g["tag"]]


def test_a_deleted_tag_is_deleted_in_wecom_too(brand, wecom):
    configure(brand, wecom)
    made = tags(brand)
    run(brand)
    with brand.scope():
        Tag.objects.filter(pk=made["store"].pk).delete()
    summary = run(brand)
    assert summary["deleted"] == 1
    assert sorted(t["name"] for g in wecom.tag_groups.values() for t in g["tag"]) == ["价格敏感", "包裹卡"]


def test_a_rate_limit_stops_the_sync_and_the_next_run_carries_on(brand, wecom):
    configure(brand, wecom)
    made = tags(brand)
    people = [contact(brand, f"wm{i}") for i in range(5)]
    give(brand, people, made["parcel"])
    wecom.fail_next(45009, 1, path=MARK)
    with brand.scope():
        tagging.save_tag_group(brand.tenant, {"name": "空组二"})
    first = run(brand, batch=2)
    assert "45009" in first["error"] and first["contacts_marked"] == 0
    second = run(brand, batch=2)
    assert second["error"] == "" and second["contacts_marked"] == 5
    assert all(wecom.tags_of("zhangsan", f"wm{i}") == ["包裹卡"] for i in range(5))
    # Nobody was marked twice.
    marked = [(r["body"]["external_userid"], tuple(r["body"]["add_tag"])) for r in wecom.calls(MARK) if r["errcode"] == 0]
    assert len(marked) == len(set(marked)) == 5


def test_members_who_deleted_their_guide_are_not_marked(brand, wecom):
    configure(brand, wecom)
    made = tags(brand)
    gone = contact(brand, "wmGONE")
    with brand.scope():
        Member.objects.filter(pk=gone.pk).update(contact_status=ContactStatus.DELETED_BY_CUSTOMER)
    give(brand, [gone], made["parcel"])
    assert run(brand)["contacts_marked"] == 0
    assert wecom.calls(MARK) == []


def test_tag_sync_needs_wecom_to_be_set_up(brand):
    tags(brand)
    assert run(brand)["error"] == "WeCom corp id and secret are not set."


# ---------------------------------------------------------------- the settings page

def test_the_sync_button_mirrors_the_tags(brand, wecom, django_capture_on_commit_callbacks):
    configure(brand, wecom)
    tags(brand)
    client = brand.session(brand.operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/hooks/wecom/settings/sync-tags/")
    assert response.status_code == 302
    assert sorted(g["group_name"] for g in wecom.tag_groups.values()) == ["价格敏感度", "渠道来源"]
    with brand.scope():
        assert WeComTagLink.objects.filter(tag__isnull=False).count() == 3


def test_guides_may_not_start_a_tag_sync(brand, wecom):
    configure(brand, wecom)
    assert brand.session(brand.guide).post("/hooks/wecom/settings/sync-tags/").status_code == 403
    assert wecom.requests == []


def test_a_tag_sync_only_touches_the_operators_own_brand(brand, other_brand, wecom, django_capture_on_commit_callbacks):
    configure(brand, wecom)
    configure(other_brand, wecom)
    tags(other_brand)
    with django_capture_on_commit_callbacks(execute=True):
        brand.session(brand.operator).post("/hooks/wecom/settings/sync-tags/")
    assert wecom.tag_groups == {}
    with other_brand.scope():
        assert not WeComTagLink.objects.exists()


def test_the_settings_page_shows_the_callback_url_and_never_the_secrets(brand, wecom):
    configure(brand, wecom)
    page = brand.session(brand.operator).get("/campaigns/settings/").content.decode()
    assert f"/hooks/wecom/{brand.tenant.slug}/" in page
    for secret in (TOKEN, AES_KEY, SECRET):
        assert secret not in page
    assert "Sync tags to WeCom" in page or "同步标签到企业微信" in page


def test_saving_settings_with_blank_secrets_keeps_them_and_a_bad_key_is_refused(brand, wecom):
    configure(brand, wecom)
    client = brand.session(brand.operator)
    form = {"max_touches": 2, "per_days": 7, "quiet_start": "21:00", "quiet_end": "09:00", "dont_disturb_days": 7,
            "attribution_days": 7, "commission_rate": "3.00", "wecom_api_base": wecom.base_url,
            "wecom_corp_id": "wx5823bf96d3bd56c7", "wecom_secret": "", "wecom_callback_token": "",
            "wecom_aes_key": ""}
    assert client.post("/campaigns/settings/", form).status_code == 302
    with brand.scope():
        saved = OutreachSettings.objects.get()
    assert (saved.wecom_secret, saved.wecom_callback_token, saved.wecom_aes_key) == (SECRET, TOKEN, AES_KEY)
    response = client.post("/campaigns/settings/", {**form, "wecom_aes_key": "too-short"})
    assert response.status_code == 200
    assert "43" in response.content.decode()
    with brand.scope():
        assert OutreachSettings.objects.get().wecom_aes_key == AES_KEY

