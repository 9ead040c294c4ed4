from decimal import Decimal

from coupons.models import Coupon, CouponTemplate
from coupons import services
from tests.api_cases import ModelEndpointCases, assert_error, post_json
from tests.coupons.factories import at, make_members, make_template


class TestCouponTemplateEndpoint(ModelEndpointCases):
    url = "/api/v1/coupon-templates/"
    model = CouponTemplate
    contract_fields = (
        "name", "type", "amount", "threshold", "discount_rate", "discount_cap", "gift", "store_ids", "categories",
        "validity", "valid_from", "valid_until", "valid_days", "total_stock", "issued_count", "remaining_stock",
        "per_member_limit", "active", "summary",
    )
    list_queries = 4

    def make(self, brand, count):
        return [make_template(brand, name=f"券{i}", stores=[brand.store]) for i in range(count)]

    def make_more(self, brand, count):
        return [make_template(brand, name=f"更多{i}", stores=[brand.store2]) for i in range(count)]

    def create_payload(self, brand):
        return {"name": "满299减66", "type": "cash_off", "amount": "66.00", "threshold": "299.00", "validity": "days",
                "valid_days": 90, "store_ids": [brand.store.pk], "total_stock": 1000}

    def foreign_payloads(self, brand, other):
        return [("store_ids", {**self.create_payload(brand), "store_ids": [other.store.pk]})]

    def update_payload(self, brand, obj):
        return {"threshold": "199.00", "active": False}, {"threshold": "199.00", "active": False}


def test_a_template_missing_what_its_type_needs_is_refused_on_that_field(brand):
    response = post_json(brand.api(), "/api/v1/coupon-templates/", {"name": "八折", "type": "discount", "valid_days": 30})
    assert_error(response, 400, field="discount_rate")


def test_a_guide_may_read_templates_but_not_change_them(brand):
    client = brand.session(brand.guide)
    assert client.get("/api/v1/coupon-templates/").status_code == 200
    response = post_json(client, "/api/v1/coupon-templates/", {"name": "x", "type": "cash_off", "amount": "5", "valid_days": 3})
    assert_error(response, 403)


def test_issue_counts_first_then_issues_and_answers_the_codes(brand):
    make_members(brand, 3)
    template = make_template(brand, total_stock=2)
    payload = {"template_id": template.pk, "member_external_ids": ["M0000", "M0001", "M0002"]}
    counted = post_json(brand.api(), "/api/v1/coupons/issue/", {**payload, "dry_run": True}).json()
    assert (counted["issued"], counted["out_of_stock"], counted["dry_run"]) == (2, 1, True)
    with brand.scope():
        assert Coupon.objects.count() == 0
    response = post_json(brand.api(), "/api/v1/coupons/issue/", payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["issued"], body["out_of_stock"], len(body["codes"])) == (2, 1, 2)
    with brand.scope():
        assert set(Coupon.objects.values_list("code", flat=True)) == set(body["codes"])
        assert set(Coupon.objects.values_list("source", flat=True)) == {"api"}


def test_issuing_with_the_same_key_twice_issues_once(brand):
    make_members(brand, 2)
    template = make_template(brand, per_member_limit=None)
    payload = {"template_id": template.pk, "member_external_ids": ["M0000", "M0001"], "key": "welcome-2026-03"}
    assert post_json(brand.api(), "/api/v1/coupons/issue/", payload).json()["issued"] == 2
    again = post_json(brand.api(), "/api/v1/coupons/issue/", payload).json()
    assert (again["issued"], again["already_issued"]) == (0, 2)


def test_issue_refuses_another_brands_template_and_unknown_members_by_field(brand, other_brand):
    make_members(brand, 1)
    theirs = make_template(other_brand)
    assert_error(post_json(brand.api(), "/api/v1/coupons/issue/", {"template_id": theirs.pk, "member_external_ids": ["M0000"]}), 400, field="template_id")
    mine = make_template(brand)
    error = assert_error(post_json(brand.api(), "/api/v1/coupons/issue/", {"template_id": mine.pk, "member_external_ids": ["NOPE"]}), 400, field="member_external_ids")
    assert "NOPE" in error["fields"]["member_external_ids"][0]
    other_members = make_members(other_brand, 1, prefix="X")
    assert_error(post_json(brand.api(), "/api/v1/coupons/issue/", {"template_id": mine.pk, "member_ids": other_members}), 400, field="member_ids")


def _one_coupon(brand, **fields):
    member = make_members(brand, 1)
    template = make_template(brand, **fields)
    with brand.scope():
        services.issue_coupons(brand.tenant, template, member, as_of=at("2026-03-01 10:00"))
        return Coupon.objects.get(template=template)


def test_redeem_over_the_api_answers_the_coupon_and_a_retry_answers_the_same(brand):
    coupon = _one_coupon(brand, valid_days=3650)
    url = f"/api/v1/coupons/{coupon.display_code}/redeem/"
    payload = {"order_external_id": "POS-1", "amount": "120.00", "store_code": brand.store.code}
    first = post_json(brand.session(brand.guide), url, payload)
    assert first.status_code == 200, first.content
    assert first.json()["replayed"] is False
    assert first.json()["coupon"]["status"] == "redeemed"
    assert first.json()["coupon"]["redeemed_guide_id"] == brand.guide.pk
    again = post_json(brand.session(brand.guide), url, payload)
    assert again.json()["replayed"] is True
    assert again.json()["coupon"] == first.json()["coupon"]


def test_refusals_name_the_reason_in_the_error_code(brand):
    coupon = _one_coupon(brand, valid_days=3650, threshold=Decimal("200"), stores=[brand.store])
    url = f"/api/v1/coupons/{coupon.code}/redeem/"
    below = assert_error(post_json(brand.api(), url, {"order_external_id": "P1", "amount": "199.99", "store_code": brand.store.code}, HTTP_ACCEPT_LANGUAGE="en"), 422)
    assert below["code"] == "below_threshold" and "200" in below["message"]
    wrong = assert_error(post_json(brand.api(), url, {"order_external_id": "P1", "amount": "250", "store_code": brand.store2.code}), 422)
    assert wrong["code"] == "wrong_store"
    unknown = assert_error(post_json(brand.api(), "/api/v1/coupons/ZZZZZ-ZZZZZ/redeem/", {"order_external_id": "P1", "amount": "250"}), 404)
    assert unknown["code"] == "unknown_code"
    assert_error(post_json(brand.api(), url, {"amount": "250"}), 400, field="order_external_id")


def test_an_expired_coupon_is_refused_as_expired(brand):
    coupon = _one_coupon(brand, valid_days=1)
    error = assert_error(post_json(brand.api(), f"/api/v1/coupons/{coupon.code}/redeem/", {"order_external_id": "P1", "amount": "10"}), 422)
    assert error["code"] == "expired"


def test_another_brands_coupon_is_a_404_everywhere(brand, other_brand):
    theirs = _one_coupon(other_brand, valid_days=3650)
    client = brand.api()
    assert_error(client.get(f"/api/v1/coupons/{theirs.code}/"), 404)
    for action, payload in [("redeem", {"order_external_id": "P", "amount": "10"}), ("void", {}), ("claim", {}),
                            ("unredeem", {"order_external_id": "P"})]:
        assert_error(post_json(client, f"/api/v1/coupons/{theirs.code}/{action}/", payload), 404)
    with other_brand.scope():
        assert Coupon.objects.get(pk=theirs.pk).status == "issued"
    assert theirs.pk not in {row["id"] for row in client.get("/api/v1/coupons/").json()["results"]}


def test_coupons_are_found_by_code_or_member_mobile_and_a_guide_sees_only_their_members(brand):
    from members.services import upsert_members

    coupon = _one_coupon(brand, valid_days=3650)
    with brand.scope():
        upsert_members(brand.tenant, [(0, {"external_id": "M0000", "mobile": "13800138000", "owner_guide": brand.guide})])
    api = brand.api()
    assert [r["id"] for r in api.get("/api/v1/coupons/", {"q": coupon.display_code.lower()}).json()["results"]] == [coupon.pk]
    assert [r["id"] for r in api.get("/api/v1/coupons/", {"q": "138 0013 8000"}).json()["results"]] == [coupon.pk]
    assert [r["id"] for r in brand.session(brand.guide).get("/api/v1/coupons/").json()["results"]] == [coupon.pk]
    assert brand.session(brand.guide2).get("/api/v1/coupons/").json()["results"] == []


def test_void_and_unredeem_over_the_api(brand):
    coupon = _one_coupon(brand, valid_days=3650)
    post_json(brand.api(), f"/api/v1/coupons/{coupon.code}/redeem/", {"order_external_id": "P1", "amount": "10"})
    assert_error(post_json(brand.api(), f"/api/v1/coupons/{coupon.code}/void/", {}), 422)
    other = assert_error(post_json(brand.api(), f"/api/v1/coupons/{coupon.code}/unredeem/", {"order_external_id": "P2"}), 422)
    assert other["code"] == "other_order"
    undone = post_json(brand.api(), f"/api/v1/coupons/{coupon.code}/unredeem/", {"order_external_id": "P1"})
    assert undone.json()["status"] == "issued"
    voided = post_json(brand.api(), f"/api/v1/coupons/{coupon.code}/void/", {"reason": "作废"})
    assert voided.json()["status"] == "voided"
    assert_error(post_json(brand.session(brand.guide), f"/api/v1/coupons/{coupon.code}/void/", {}), 403)


def test_results_count_redemptions_and_sales_by_template_and_guide(brand):
    from members.services import upsert_members

    members = make_members(brand, 4)
    with brand.scope():
        upsert_members(brand.tenant, [(0, {"external_id": "M0000", "owner_guide": brand.guide}),
                                      (1, {"external_id": "M0001", "owner_guide": brand.guide})])
    template = make_template(brand, valid_days=3650, per_member_limit=None)
    with brand.scope():
        services.issue_coupons(brand.tenant, template, members, as_of=at("2026-03-01 10:00"))
        codes = dict(Coupon.objects.values_list("member_id", "code"))
    for i, amount in [(0, "300.00"), (2, "150.50")]:
        post_json(brand.api(), f"/api/v1/coupons/{codes[members[i]]}/redeem/", {"order_external_id": f"P{i}", "amount": amount})
    by_template = brand.api().get("/api/v1/coupon-templates/results/").json()
    assert by_template == [{
        "key": template.pk, "label": template.name, "issued": 4, "claimed": 0, "redeemed": 2, "expired": 0, "voided": 0,
        "redemption_rate": "0.5000", "sales": "450.50", "benefit": "132.00",
    }]
    by_guide = {row["key"]: row for row in brand.api().get("/api/v1/coupon-templates/results/", {"group_by": "guide"}).json()}
    assert (by_guide[brand.guide.pk]["issued"], by_guide[brand.guide.pk]["redeemed"], by_guide[brand.guide.pk]["sales"]) == (2, 1, "300.00")
    assert by_guide[None]["redeemed"] == 1
    assert_error(brand.api().get("/api/v1/coupon-templates/results/", {"group_by": "colour"}), 400, field="group_by")
