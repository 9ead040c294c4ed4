"""/api/v1/live-codes/: CRUD with the guides and tags behind a code, and joins for integrators."""
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import acquisition
from campaigns.models import LiveCode, LiveCodeJoin
from coupons.models import Coupon
from members.models import Member
from tagging.models import Tag, TagGroup
from tests.api_cases import ModelEndpointCases, assert_error, post_json

from .helpers import template

pytestmark = pytest.mark.django_db

URL = "/api/v1/live-codes/"


def make_code(brand, name="收银台", **data):
    with brand.scope():
        return acquisition.save_live_code(brand.tenant, {
            "name": name, "channel_type": "store_cashier", "store": brand.store, "pool": [brand.guide, brand.guide2],
            **data}, as_of=timezone.now())


def a_tag(brand, name="收银台"):
    with brand.scope():
        group = TagGroup.objects.create(tenant=brand.tenant, name="渠道")
        return Tag.objects.create(tenant=brand.tenant, group=group, name=name)


class TestLiveCodeEndpoint(ModelEndpointCases):
    url = URL
    model = LiveCode
    contract_fields = ("name", "code", "public_url", "channel_type", "store", "rule", "pool", "fixed_guide",
                       "backup_guide", "daily_cap", "work_start", "work_end", "welcome_message", "welcome_coupon",
                       "tags", "reassign_existing", "starts_at", "ends_at", "status", "cost")
    list_queries = 6

    def make(self, brand, count):
        return [make_code(brand, name=f"码{i}") for i in range(count)]

    def make_more(self, brand, count):
        return [make_code(brand, name=f"更多{i}") for i in range(count)]

    def create_payload(self, brand):
        return {"name": "包裹卡", "channel_type": "parcel_card", "store": brand.store.pk,
                "pool": [brand.guide2.pk, brand.guide.pk], "daily_cap": 50}

    def foreign_payloads(self, brand, other):
        tag = a_tag(other)
        coupon = template(other)
        base = self.create_payload(brand)
        return [
            ("store", {**base, "store": other.store.pk}),
            ("pool", {**base, "pool": [brand.guide.pk, other.guide.pk]}),
            ("backup_guide", {**base, "backup_guide": other.guide.pk}),
            ("tags", {**base, "tags": [tag.pk]}),
            ("welcome_coupon", {**base, "welcome_coupon": coupon.pk}),
        ]

    def update_payload(self, brand, obj):
        return {"pool": [brand.guide2.pk], "status": "paused"}, {"pool": [brand.guide2.pk], "status": "paused"}


def test_create_keeps_the_pool_order_and_the_printed_code_survives_changes(brand):
    client = brand.api()
    created = post_json(client, URL, {"name": "海报", "channel_type": "poster", "pool": [brand.guide2.pk, brand.guide.pk]})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["pool"] == [brand.guide2.pk, brand.guide.pk]
    assert body["public_url"].endswith(f"/j/{body['code']}/")
    changed = client.patch(f"{URL}{body['id']}/", {"pool": [brand.guide.pk], "rule": "fixed", "fixed_guide": brand.guide.pk},
                           format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["code"], changed.json()["pool"]) == (body["code"], [brand.guide.pk])


def test_rules_the_service_checks_come_back_as_field_errors(brand):
    assert_error(post_json(brand.api(), URL, {"name": "固定", "channel_type": "poster", "rule": "fixed"}), 400,
                 field="fixed_guide")
    assert_error(post_json(brand.api(), URL, {"name": "x", "channel_type": "poster", "pool": [brand.guide.pk],
                                              "welcome_message": "{points}"}), 400, field="welcome_message")


def test_an_api_join_creates_the_member_and_answers_guide_and_coupon(brand):
    code = make_code(brand, welcome_coupon=template(brand))
    response = post_json(brand.api(), f"{URL}{code.pk}/joins/", {"mobile": "138-0013-8000", "name": "王芳"})
    assert response.status_code == 201, response.content
    body = response.json()
    with brand.scope():
        member = Member.objects.get(pk=body["member_id"])
        coupon = Coupon.objects.get(member=member)
    assert (member.mobile, member.name, member.owner_guide_id) == ("13800138000", "王芳", brand.guide.pk)
    assert (body["guide_id"], body["guide_name"], body["new_member"], body["door"]) == (brand.guide.pk, "导购甲", True, "api")
    assert body["coupon_code"] == coupon.display_code and body["replayed"] is False

    listed = brand.api().get(f"{URL}{code.pk}/joins/").json()["results"]
    assert [row["member_id"] for row in listed] == [member.pk]
    assert brand.api().get(f"{URL}{code.pk}/joins/", {"guide_id": brand.guide2.pk}).json()["results"] == []


def test_a_retried_join_with_an_idempotency_key_replays_and_gives_no_second_coupon(brand):
    code = make_code(brand, welcome_coupon=template(brand))
    first = post_json(brand.api(), f"{URL}{code.pk}/joins/", {"mobile": "13800138000"}, HTTP_IDEMPOTENCY_KEY="j-1")
    again = post_json(brand.api(), f"{URL}{code.pk}/joins/", {"mobile": "13800138000"}, HTTP_IDEMPOTENCY_KEY="j-1")
    assert again.status_code == first.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    # Without the key, the same person joining the code again is answered with the first join.
    third = post_json(brand.api(), f"{URL}{code.pk}/joins/", {"mobile": "13800138000"})
    assert third.status_code == 200 and third.json()["replayed"] is True and third.json()["id"] == first.json()["id"]
    with brand.scope():
        assert (LiveCodeJoin.objects.count(), Coupon.objects.count()) == (1, 1)


def test_a_join_needs_a_valid_mobile_or_a_wecom_id(brand):
    code = make_code(brand)
    assert_error(post_json(brand.api(), f"{URL}{code.pk}/joins/", {"name": "无名"}), 400, field="mobile")
    assert_error(post_json(brand.api(), f"{URL}{code.pk}/joins/", {"mobile": "12345"}), 400, field="mobile")
    with brand.scope():
        assert not Member.objects.exists()


def test_a_paused_or_ended_code_refuses_joins_with_a_reason(brand):
    paused = make_code(brand, status="paused")
    error = assert_error(post_json(brand.api(), f"{URL}{paused.pk}/joins/", {"mobile": "13800138000"}), 422)
    assert error["code"] == "paused"
    ended = make_code(brand, name="旧码", ends_at=timezone.now() - timedelta(days=1))
    assert assert_error(post_json(brand.api(), f"{URL}{ended.pk}/joins/", {"mobile": "13800138000"}), 422)["code"] == "ended"


def test_another_brands_code_is_a_404_for_joining_and_for_its_joins(brand, other_brand):
    theirs = make_code(other_brand)
    assert_error(post_json(brand.api(), f"{URL}{theirs.pk}/joins/", {"mobile": "13800138000"}), 404)
    assert_error(brand.api().get(f"{URL}{theirs.pk}/joins/"), 404)
    with other_brand.scope():
        assert not LiveCodeJoin.objects.exists() and not Member.objects.exists()
    with brand.scope():
        assert not Member.objects.exists()


def test_guides_may_read_codes_but_not_change_them_or_join_through_them(brand):
    code = make_code(brand)
    client = brand.session(brand.guide)
    assert client.get(URL).status_code == 200
    assert_error(client.patch(f"{URL}{code.pk}/", {"status": "paused"}, format="json"), 403)
    assert_error(post_json(client, f"{URL}{code.pk}/joins/", {"mobile": "13800138000"}), 403)
