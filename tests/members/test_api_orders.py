from decimal import Decimal

import pytest

from members import services
from members.models import Member, Order
from tests.api_cases import BulkCases, ModelEndpointCases, VisibilityCases, assert_error, patch_json, post_json
from tests.members.test_api_members import make_members

ORDER_FIELDS = (
    "external_id", "member_external_id", "mobile", "store_code", "guide", "placed_at", "status", "total", "discount",
    "refunded_amount", "lines",
)
LINE_FIELDS = {"sku", "name", "category", "quantity", "unit_price", "amount"}


def order_item(key, member_key="M0", total="399.00", **fields):
    return {
        "external_id": key, "member_external_id": member_key, "placed_at": "2025-11-01T14:32:00+08:00",
        "total": total, "discount": "40.00",
        "lines": [
            {"sku": "TS-001-M", "name": "基础圆领T恤", "category": "apparel", "quantity": 2, "unit_price": "99.50",
             "amount": "199.00"},
            {"sku": "BG-210", "name": "帆布托特包", "category": "shoes_bags", "quantity": 1, "unit_price": "200.00",
             "amount": "200.00"},
        ],
        **fields,
    }


def make_orders(brand, keys, member_key="M0"):
    """Orders through the service, as an integrator's earlier batch would have made them."""
    from members.serializers import OrderSerializer

    with brand.scope():
        items = []
        for i, key in enumerate(keys):
            serializer = OrderSerializer(data=order_item(key, member_key))
            serializer.is_valid(raise_exception=True)
            items.append((i, serializer.validated_data))
        outcomes, errors = services.ingest_orders(brand.tenant, items)
        assert not errors, errors
        return list(Order.objects.filter(pk__in=[o["id"] for o in outcomes.values()]).order_by("pk"))


def stored_order(brand, key):
    with brand.scope():
        return Order.objects.filter(external_id=key).first()


@pytest.mark.django_db
class TestOrdersEndpoint(ModelEndpointCases, BulkCases, VisibilityCases):
    url = "/api/v1/orders/"
    model = Order
    contract_fields = ORDER_FIELDS
    list_queries = 3  # the API key, one page of orders with store and guide, and their lines

    def make(self, brand, count):
        make_members(brand, ["M0"], guide=brand.guide)
        return make_orders(brand, [f"O{i}" for i in range(count)])

    def make_more(self, brand, count):
        make_members(brand, ["M9"], guide=brand.guide2, store=brand.store2)
        return make_orders(brand, [f"P{i}" for i in range(count)], member_key="M9")

    def make_for(self, brand, guide, key):
        store = brand.store if guide == brand.guide else brand.store2
        make_members(brand, [f"member-{key}"], guide=guide, store=store)
        return make_orders(brand, [key], member_key=f"member-{key}")[0]

    def create_payload(self, brand):
        return order_item("NEW1", store_code=brand.store.code, guide=brand.guide.pk)

    def foreign_payloads(self, brand, other):
        return [
            ("store_code", {**self.create_payload(brand), "store_code": other.store.code}),
            ("guide", {**self.create_payload(brand), "guide": other.guide.pk}),
        ]

    def update_payload(self, brand, obj):
        return {"status": "refunded"}, {"status": "refunded", "refunded_amount": "399.00"}

    def bulk_item(self, brand, key):
        return order_item(key, store_code=brand.store.code)

    def bulk_bad_item(self, brand, key):
        return order_item(key, total="-1.00"), "total"

    def changed_item(self, brand, key):
        return {**self.bulk_item(brand, key), "refunded_amount": "100.00"}

    def bulk_foreign_items(self, brand, other, key):
        return [
            ("store_code", order_item(f"{key}1", store_code=other.store.code)),
            ("guide", order_item(f"{key}2", guide=other.guide.pk)),
        ]

    def stored(self, brand, key):
        return stored_order(brand, key)


@pytest.mark.django_db
class TestOrderPayload:
    def test_an_order_answers_its_lines_and_money_as_decimal_strings(self, brand):
        make_members(brand, ["M0"])
        body = post_json(brand.api(), "/api/v1/orders/", order_item("O1", store_code=brand.store.code)).json()
        assert body["total"] == "399.00" and body["discount"] == "40.00" and body["refunded_amount"] == "0.00"
        assert body["status"] == "paid"
        assert body["store_code"] == brand.store.code
        assert [set(line) for line in body["lines"]] == [LINE_FIELDS, LINE_FIELDS]
        assert body["lines"][0]["unit_price"] == "99.50"

    def test_an_order_without_member_external_id_or_mobile_is_refused(self, brand):
        payload = order_item("O1", member_key="")
        assert_error(post_json(brand.api(), "/api/v1/orders/", payload), 400, field="member_external_id")

    def test_a_refund_larger_than_the_total_is_refused(self, brand):
        payload = order_item("O1", refunded_amount="400.00")
        assert_error(post_json(brand.api(), "/api/v1/orders/", payload), 400, field="refunded_amount")

    def test_bulk_replaces_the_lines_of_an_order_that_changed(self, brand):
        post_json(brand.api(), "/api/v1/orders/bulk/", [order_item("O1")])
        changed = order_item("O1")
        changed["lines"] = changed["lines"][:1]
        result = post_json(brand.api(), "/api/v1/orders/bulk/", [changed]).json()["results"][0]
        assert result["status"] == "updated"
        body = brand.api().get(f"/api/v1/orders/{result['id']}/").json()
        assert [line["sku"] for line in body["lines"]] == ["TS-001-M"]


@pytest.mark.django_db
class TestRefunds:
    def test_patch_to_refunded_refunds_the_total(self, brand):
        order = make_orders(brand, ["O1"])[0]
        body = patch_json(brand.api(), f"/api/v1/orders/{order.pk}/", {"status": "refunded"}).json()
        assert body["status"] == "refunded"
        assert body["refunded_amount"] == "399.00"
        assert stored_order(brand, "O1").refunded_amount == Decimal("399.00")

    def test_patch_with_a_partial_refund_marks_the_order_partially_refunded(self, brand):
        order = make_orders(brand, ["O1"])[0]
        body = patch_json(brand.api(), f"/api/v1/orders/{order.pk}/", {"refunded_amount": "99.50"}).json()
        assert body["status"] == "partially_refunded"
        assert body["refunded_amount"] == "99.50"

    def test_patch_with_a_refund_of_the_whole_total_marks_the_order_refunded(self, brand):
        order = make_orders(brand, ["O1"])[0]
        body = patch_json(brand.api(), f"/api/v1/orders/{order.pk}/", {"refunded_amount": "399.00"}).json()
        assert body["status"] == "refunded"

    def test_patch_with_a_refund_above_the_total_is_refused_and_changes_nothing(self, brand):
        order = make_orders(brand, ["O1"])[0]
        response = patch_json(brand.api(), f"/api/v1/orders/{order.pk}/", {"refunded_amount": "400.00"})
        assert_error(response, 400, field="refunded_amount")
        assert stored_order(brand, "O1").status == Order.Status.PAID

    def test_patch_keeps_the_lines_and_the_binding(self, brand):
        make_members(brand, ["M0"])
        order = make_orders(brand, ["O1"])[0]
        body = patch_json(brand.api(), f"/api/v1/orders/{order.pk}/", {"status": "refunded"}).json()
        assert len(body["lines"]) == 2
        assert body["member_id"] == order.member_id is not None


@pytest.mark.django_db
class TestOrderBinding:
    def test_an_order_that_names_a_known_member_is_bound_to_it(self, brand):
        member = make_members(brand, ["M0"])[0]
        result = post_json(brand.api(), "/api/v1/orders/bulk/", [order_item("O1")]).json()["results"][0]
        assert result["member_id"] == member.pk
        assert stored_order(brand, "O1").member_id == member.pk

    def test_an_order_is_bound_by_mobile_when_it_names_no_member(self, brand):
        member = make_members(brand, ["M0"], mobile="13800138000")[0]
        item = order_item("O1", member_key="", mobile="+86 138 0013 8000")
        assert post_json(brand.api(), "/api/v1/orders/bulk/", [item]).json()["results"][0]["status"] == "created"
        assert stored_order(brand, "O1").member_id == member.pk

    def test_an_order_of_an_unknown_member_is_kept_and_bound_when_the_member_arrives(self, brand):
        response = post_json(brand.api(), "/api/v1/orders/bulk/", [order_item("O1", member_key="LATE")])
        assert response.json()["results"][0]["status"] == "created"
        assert stored_order(brand, "O1").member_id is None
        listed = brand.api().get("/api/v1/orders/", {"bound": "false"}).json()["results"]
        assert [row["external_id"] for row in listed] == ["O1"]

        created = post_json(brand.api(), "/api/v1/members/bulk/", [{"external_id": "LATE", "name": "迟到"}])
        member_id = created.json()["results"][0]["id"]
        assert stored_order(brand, "O1").member_id == member_id
        body = brand.api().get(f"/api/v1/members/{member_id}/").json()
        assert [o["external_id"] for o in body["recent_orders"]] == ["O1"]
        assert body["order_summary"]["orders"] == 1

    def test_an_order_known_only_by_mobile_is_bound_when_a_member_with_that_mobile_arrives(self, brand):
        post_json(brand.api(), "/api/v1/orders/bulk/", [order_item("O1", member_key="", mobile="13800138000")])
        created = post_json(brand.api(), "/api/v1/members/", {"external_id": "M7", "mobile": "13800138000"})
        assert stored_order(brand, "O1").member_id == created.json()["id"]

    def test_an_order_waits_for_a_member_that_gets_its_mobile_later(self, brand):
        make_members(brand, ["M0"])
        post_json(brand.api(), "/api/v1/orders/bulk/", [order_item("O1", member_key="", mobile="13800138000")])
        member = stored_member(brand, "M0")
        patch_json(brand.api(), f"/api/v1/members/{member.pk}/", {"mobile": "13800138000"})
        assert stored_order(brand, "O1").member_id == member.pk

    def test_a_member_of_another_brand_never_binds_an_order(self, brand, other_brand):
        make_members(other_brand, ["M0"], mobile="13800138000")
        post_json(brand.api(), "/api/v1/orders/bulk/", [order_item("O1"), order_item("O2", member_key="", mobile="13800138000")])
        assert stored_order(brand, "O1").member_id is None
        assert stored_order(brand, "O2").member_id is None
        post_json(other_brand.api(), "/api/v1/members/bulk/", [{"external_id": "M0", "name": "别家"}])
        assert stored_order(brand, "O1").member_id is None

    def test_a_guide_can_record_an_order_for_a_member_they_cannot_see(self, brand):
        response = post_json(brand.session(brand.guide), "/api/v1/orders/", order_item("O1", member_key="UNKNOWN"))
        assert response.status_code == 201, response.content
        assert response.json()["external_id"] == "O1"


def stored_member(brand, key):
    with brand.scope():
        return Member.objects.get(external_id=key)


@pytest.mark.django_db
class TestOrderFilters:
    def test_it_filters_by_member_store_status_and_placed_at(self, brand):
        member = make_members(brand, ["M0"])[0]
        post_json(brand.api(), "/api/v1/orders/bulk/", [
            order_item("O1", store_code=brand.store.code, placed_at="2025-10-01T10:00:00+08:00"),
            order_item("O2", store_code=brand.store2.code, status="refunded"),
            order_item("O3", member_key="OTHER"),
        ])

        def ids(**params):
            return {row["external_id"] for row in brand.api().get("/api/v1/orders/", params).json()["results"]}

        assert ids(member_id=member.pk) == {"O1", "O2"}
        assert ids(store_id=brand.store2.pk) == {"O2"}
        assert ids(status="refunded") == {"O2"}
        assert ids(placed_before="2025-10-02T00:00:00+08:00") == {"O1"}
        assert ids(bound="true") == {"O1", "O2"}
