from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members import services
from members.models import ContactStatus, Member
from tests.api_cases import (
    BulkCases, ModelEndpointCases, VisibilityCases, assert_error, patch_json, post_json,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
JOINED = datetime(2025, 3, 1, 10, 0, tzinfo=SHANGHAI)
MEMBER_FIELDS = (
    "external_id", "name", "mobile", "gender", "birthday", "city", "joined_at", "source_channel", "store_code",
    "guide", "contact_status", "attributes",
)


def make_members(brand, keys, guide=None, store=None, **fields):
    items = [
        (i, {
            "external_id": key, "name": f"会员{key}", "joined_at": JOINED + timedelta(days=i),
            "home_store": store or brand.store, "owner_guide": guide, **fields,
        })
        for i, key in enumerate(keys)
    ]
    with brand.scope():
        outcomes, errors = services.upsert_members(brand.tenant, items)
        assert not errors, errors
        return list(Member.objects.filter(pk__in=[o["id"] for o in outcomes.values()]).order_by("pk"))


@pytest.mark.django_db
class TestMembersEndpoint(ModelEndpointCases, BulkCases, VisibilityCases):
    url = "/api/v1/members/"
    model = Member
    contract_fields = MEMBER_FIELDS
    list_queries = 2  # the API key, then one page of members joined to their store and guide

    def make(self, brand, count):
        return make_members(brand, [f"M{i}" for i in range(count)], guide=brand.guide)

    def make_more(self, brand, count):
        return make_members(brand, [f"N{i}" for i in range(count)], guide=brand.guide2, store=brand.store2)

    def make_for(self, brand, guide, key):
        store = brand.store if guide == brand.guide else brand.store2
        return make_members(brand, [key], guide=guide, store=store)[0]

    def create_payload(self, brand):
        return {
            "external_id": "NEW1", "name": "王芳", "mobile": "+86 138-0013-8000", "gender": "female",
            "birthday": "1994-05-12", "city": "上海", "joined_at": "2025-03-01T10:00:00+08:00",
            "source_channel": "store_qr", "store_code": brand.store.code, "guide": brand.guide.pk,
            "contact_status": "active", "attributes": {"size": "M"},
        }

    def foreign_payloads(self, brand, other):
        return [
            ("store_code", {**self.create_payload(brand), "store_code": other.store.code}),
            ("guide", {**self.create_payload(brand), "guide": other.guide.pk}),
        ]

    def update_payload(self, brand, obj):
        return {"city": "北京", "contact_status": "removed_by_guide"}, {"city": "北京", "contact_status": "removed_by_guide"}

    def bulk_item(self, brand, key):
        return {"external_id": key, "name": f"会员{key}", "store_code": brand.store.code, "guide": brand.guide.pk}

    def bulk_bad_item(self, brand, key):
        return {"external_id": key, "mobile": "12345"}, "mobile"

    def changed_item(self, brand, key):
        return {**self.bulk_item(brand, key), "name": "改名"}

    def bulk_foreign_items(self, brand, other, key):
        return [
            ("store_code", {"external_id": f"{key}1", "store_code": other.store.code}),
            ("guide", {"external_id": f"{key}2", "guide": other.guide.pk}),
        ]

    def stored(self, brand, key):
        with brand.scope():
            return Member.objects.filter(external_id=key).first()


@pytest.mark.django_db
class TestMemberCreateAndUpdate:
    def test_create_normalises_the_mobile_and_resolves_store_and_guide(self, brand):
        payload = TestMembersEndpoint().create_payload(brand)
        body = post_json(brand.api(), "/api/v1/members/", payload).json()
        assert body["mobile"] == "13800138000"
        assert body["store_code"] == brand.store.code
        assert body["guide"] == brand.guide.pk
        assert body["attributes"] == {"size": "M"}

    def test_creating_an_existing_external_id_is_a_400_on_external_id(self, brand):
        make_members(brand, ["M1"])
        assert_error(post_json(brand.api(), "/api/v1/members/", {"external_id": "M1"}), 400, field="external_id")

    def test_a_mobile_that_belongs_to_another_member_is_refused(self, brand):
        make_members(brand, ["M1"], mobile="13800138000")
        response = post_json(brand.api(), "/api/v1/members/", {"external_id": "M2", "mobile": "13800138000"})
        assert_error(response, 400, field="mobile")

    def test_the_same_mobile_in_another_brand_is_no_conflict(self, brand, other_brand):
        make_members(other_brand, ["M1"], mobile="13800138000")
        response = post_json(brand.api(), "/api/v1/members/", {"external_id": "M1", "mobile": "13800138000"})
        assert response.status_code == 201, response.content

    def test_patch_of_contact_status_records_when_it_changed(self, brand):
        member = make_members(brand, ["M1"])[0]
        body = patch_json(brand.api(), f"/api/v1/members/{member.pk}/", {"contact_status": "deleted_by_customer"}).json()
        assert body["contact_status"] == "deleted_by_customer"
        assert body["contact_status_changed_at"] is not None

    def test_patch_cannot_change_the_external_id(self, brand):
        member = make_members(brand, ["M1"])[0]
        response = patch_json(brand.api(), f"/api/v1/members/{member.pk}/", {"external_id": "M2"})
        assert_error(response, 400, field="external_id")

    def test_a_guide_patching_another_guides_member_gets_a_404(self, brand):
        member = make_members(brand, ["M1"], guide=brand.guide2, store=brand.store2)[0]
        response = patch_json(brand.session(brand.guide), f"/api/v1/members/{member.pk}/", {"city": "北京"})
        assert_error(response, 404)

    def test_bulk_moves_a_member_to_another_guide_and_clears_a_mobile(self, brand):
        make_members(brand, ["M1"], guide=brand.guide, mobile="13800138000")
        items = [{"external_id": "M1", "guide": brand.guide2.pk, "mobile": None}]
        result = post_json(brand.api(), "/api/v1/members/bulk/", items).json()["results"][0]
        assert result["status"] == "updated"
        with brand.scope():
            member = Member.objects.get(external_id="M1")
        assert member.owner_guide_id == brand.guide2.pk
        assert member.mobile is None

    def test_a_single_create_with_an_idempotency_key_is_made_once(self, brand):
        payload = TestMembersEndpoint().create_payload(brand)
        first = post_json(brand.api(), "/api/v1/members/", payload, HTTP_IDEMPOTENCY_KEY="m-1")
        again = post_json(brand.api(), "/api/v1/members/", payload, HTTP_IDEMPOTENCY_KEY="m-1")
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        with brand.scope():
            assert Member.objects.filter(external_id=payload["external_id"]).count() == 1
        other = post_json(brand.api(), "/api/v1/members/", {**payload, "name": "另一个"}, HTTP_IDEMPOTENCY_KEY="m-1")
        assert_error(other, 422)

    def test_an_idempotency_key_longer_than_255_characters_is_refused(self, brand):
        response = post_json(brand.api(), "/api/v1/members/bulk/", [{"external_id": "M1"}], HTTP_IDEMPOTENCY_KEY="k" * 256)
        assert_error(response, 400, field="Idempotency-Key")

    def test_a_bulk_error_names_the_external_id_of_the_item(self, brand):
        items = [{"external_id": "M1", "mobile": "nonsense"}, {"name": "无编号"}]
        results = post_json(brand.api(), "/api/v1/members/bulk/", items).json()["results"]
        assert results[0] == {"index": 0, "external_id": "M1", "status": "error", "errors": results[0]["errors"]}
        assert "mobile" in results[0]["errors"]
        assert results[1]["status"] == "error" and "external_id" in results[1]["errors"]
        assert "external_id" not in results[1]

    def test_bulk_refuses_a_mobile_given_twice_in_one_batch(self, brand):
        items = [{"external_id": "M1", "mobile": "13800138000"}, {"external_id": "M2", "mobile": "13800138000"}]
        results = post_json(brand.api(), "/api/v1/members/bulk/", items).json()["results"]
        assert [r["status"] for r in results] == ["created", "error"]
        assert "mobile" in results[1]["errors"]


@pytest.mark.django_db
class TestMember360:
    def test_retrieve_answers_profile_order_summary_recent_orders_and_events(self, brand):
        member = make_members(brand, ["M1"], guide=brand.guide)[0]
        with brand.scope():
            services.ingest_orders(brand.tenant, [
                (0, {"external_id": "O1", "member_external_id": "M1", "mobile": "", "placed_at": JOINED,
                     "total": Decimal("300.00"), "lines": [{"sku": "A", "quantity": 1, "unit_price": Decimal("300"),
                                                            "amount": Decimal("300")}]}),
                (1, {"external_id": "O2", "member_external_id": "M1", "mobile": "", "placed_at": JOINED + timedelta(days=5),
                     "total": Decimal("100.00"), "refunded_amount": Decimal("20.00"), "status": "partially_refunded"}),
            ])
            services.ingest_events(brand.tenant, [
                (0, {"external_id": "E1", "member_external_id": "M1", "type": "message_read",
                     "occurred_at": JOINED, "properties": {"campaign": 3}}),
            ])
        body = brand.api().get(f"/api/v1/members/{member.pk}/").json()
        assert body["external_id"] == "M1"
        assert body["store_name"] == brand.store.name
        assert body["guide_name"] == brand.guide.name
        assert body["order_summary"]["orders"] == 2
        assert Decimal(body["order_summary"]["spend"]) == Decimal("380.00")
        assert Decimal(body["order_summary"]["refunded"]) == Decimal("20.00")
        assert [o["external_id"] for o in body["recent_orders"]] == ["O2", "O1"]
        assert body["recent_orders"][1]["lines"][0]["sku"] == "A"
        assert [e["external_id"] for e in body["recent_events"]] == ["E1"]
        assert body["recent_events"][0]["properties"] == {"campaign": 3}


@pytest.mark.django_db
class TestMemberFilters:
    def ids(self, client, **params):
        response = client.get("/api/v1/members/", params)
        assert response.status_code == 200, response.content
        return {row["external_id"] for row in response.json()["results"]}

    def test_it_filters_by_external_id_store_guide_and_join_date(self, brand):
        make_members(brand, ["M1", "M2"], guide=brand.guide)
        make_members(brand, ["M3"], guide=brand.guide2, store=brand.store2)
        client = brand.api()
        assert self.ids(client, external_id="M2") == {"M2"}
        assert self.ids(client, store_id=brand.store2.pk) == {"M3"}
        assert self.ids(client, guide_id=brand.guide.pk) == {"M1", "M2"}
        # Each call of make_members joins its first member on 2025-03-01, the next a day later: M1 and M3 on
        # 03-01, M2 on 03-02.
        assert self.ids(client, joined_after="2025-03-02") == {"M2"}
        assert self.ids(client, joined_before="2025-03-01") == {"M1", "M3"}

    def test_it_filters_by_contact_status(self, brand):
        make_members(brand, ["M1"])
        make_members(brand, ["M2"], contact_status=ContactStatus.DELETED_BY_CUSTOMER)
        assert self.ids(brand.api(), contact_status="deleted_by_customer") == {"M2"}

    def test_q_finds_a_member_by_name_or_mobile(self, brand):
        make_members(brand, ["M1"], mobile="13800138000")
        make_members(brand, ["M2"], mobile="13900139000", name="李雷")
        client = brand.api()
        assert self.ids(client, q="李雷") == {"M2"}
        assert self.ids(client, q="138 0013 8000") == {"M1"}
        assert self.ids(client, q="9000") == {"M2"}

    def test_a_store_or_guide_id_of_another_brand_is_refused(self, brand, other_brand):
        make_members(brand, ["M1"])
        assert_error(brand.api().get("/api/v1/members/", {"store_id": other_brand.store.pk}), 400, field="store_id")
        assert_error(brand.api().get("/api/v1/members/", {"guide_id": other_brand.guide.pk}), 400, field="guide_id")

    def test_cursor_pagination_walks_every_member_once(self, brand):
        make_members(brand, [f"M{i}" for i in range(7)])
        client, seen, url = brand.api(), [], "/api/v1/members/?page_size=3"
        while url:
            body = client.get(url).json()
            seen += [row["external_id"] for row in body["results"]]
            url = body["next"]
        assert sorted(seen) == sorted(f"M{i}" for i in range(7))
        assert len(seen) == 7
