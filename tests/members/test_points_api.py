from members import points
from members.models import MemberDay, PointsEntry, Tier
from members.services import upsert_members
from tests.api_cases import ModelEndpointCases, assert_error, patch_json, post_json
from tests.coupons.factories import at, make_members

NOW = at("2026-03-10 15:00")


class TestTierEndpoint(ModelEndpointCases):
    url = "/api/v1/tiers/"
    model = Tier
    contract_fields = ("name", "rank", "threshold", "benefits")
    list_queries = 2

    def make(self, brand, count):
        with brand.scope():
            return [Tier.objects.create(tenant=brand.tenant, name=f"T{i}", rank=i + 1, threshold=i * 1000) for i in range(count)]

    def make_more(self, brand, count):
        with brand.scope():
            return [Tier.objects.create(tenant=brand.tenant, name=f"X{i}", rank=i + 50, threshold=i * 9000) for i in range(count)]

    def listed(self, response):
        assert response.status_code == 200, response.content
        return response.json()

    def create_payload(self, brand):
        return {"name": "金卡", "rank": 9, "threshold": "5000.00", "benefits": "生日双倍积分"}

    def update_payload(self, brand, obj):
        return {"benefits": "包邮"}, {"benefits": "包邮"}


class TestMemberDayEndpoint(ModelEndpointCases):
    url = "/api/v1/member-days/"
    model = MemberDay
    contract_fields = ("name", "day_of_month", "weekday", "benefits", "active")
    list_queries = 2

    def make(self, brand, count):
        with brand.scope():
            return [MemberDay.objects.create(tenant=brand.tenant, name=f"D{i}", day_of_month=18) for i in range(count)]

    def make_more(self, brand, count):
        with brand.scope():
            return [MemberDay.objects.create(tenant=brand.tenant, name=f"W{i}", weekday=2) for i in range(count)]

    def listed(self, response):
        assert response.status_code == 200, response.content
        return response.json()

    def create_payload(self, brand):
        return {"name": "会员日", "day_of_month": 18, "benefits": "双倍积分"}

    def update_payload(self, brand, obj):
        return {"weekday": 4}, {"weekday": 4}


def test_a_tier_rank_is_unique_in_the_brand(brand):
    post_json(brand.api(), "/api/v1/tiers/", {"name": "银卡", "rank": 2, "threshold": "1000"})
    assert_error(post_json(brand.api(), "/api/v1/tiers/", {"name": "银卡2", "rank": 2, "threshold": "1000"}), 400, field="rank")


def test_points_rules_read_defaults_and_save_changes(brand):
    assert brand.api().get("/api/v1/points-rules/").json()["points_per_yuan"] == "1.00"
    response = patch_json(brand.api(), "/api/v1/points-rules/current/", {"points_per_yuan": "2.00", "expiry": "end_of_next_year"})
    assert response.status_code == 200, response.content
    assert brand.api().get("/api/v1/points-rules/").json()["expiry"] == "end_of_next_year"
    assert brand.api().get("/api/v1/tier-settings/").json()["hold_days"] == 365
    assert_error(patch_json(brand.session(brand.guide), "/api/v1/points-rules/current/", {"sign_in_points": 1}), 403)


def test_spend_over_the_api_refuses_to_overdraw_by_name(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        points.adjust_points(brand.tenant, member, 20, reason="x", as_of=NOW)
    error = assert_error(post_json(brand.api(), "/api/v1/points/spend/", {"member_id": member, "points": 21, "kind": "exchange"}), 422)
    assert error["code"] == "insufficient_points"
    ok = post_json(brand.api(), "/api/v1/points/spend/", {"member_id": member, "points": 20, "kind": "exchange", "key": "EX-1"})
    assert ok.status_code == 201 and ok.json()["balance_after"] == 0


def test_adjust_sign_in_and_the_member_summary(brand):
    [member] = make_members(brand, 1)
    adjusted = post_json(brand.session(brand.operator), "/api/v1/points/adjust/", {"member_id": member, "points": 30, "reason": "补偿"})
    assert adjusted.status_code == 201, adjusted.content
    signed = post_json(brand.api(), "/api/v1/points/sign-in/", {"member_id": member}).json()
    assert (signed["first_today"], signed["entry"]["points"]) == (True, 5)
    post_json(brand.api(), "/api/v1/points/paid-membership/", {"member_id": member, "paid_until": "2026-12-31"})
    summary = brand.api().get(f"/api/v1/points/members/{member}/").json()
    assert (summary["balance"], summary["paid_member"], summary["paid_until"]) == (35, True, "2026-12-31")
    assert [e["kind"] for e in summary["recent"]] == ["sign_in", "adjustment"]


def test_a_guide_may_not_adjust_points_and_sees_only_their_members_ledger(brand):
    mine, other = make_members(brand, 2)
    with brand.scope():
        upsert_members(brand.tenant, [(0, {"external_id": "M0000", "owner_guide": brand.guide})])
        points.adjust_points(brand.tenant, mine, 5, reason="x", as_of=NOW)
        points.adjust_points(brand.tenant, other, 5, reason="y", as_of=NOW)
    client = brand.session(brand.guide)
    assert_error(post_json(client, "/api/v1/points/adjust/", {"member_id": mine, "points": 5, "reason": "z"}), 403)
    assert {row["member_id"] for row in client.get("/api/v1/points/").json()["results"]} == {mine}
    assert_error(client.get(f"/api/v1/points/members/{other}/"), 404)


def test_another_brands_member_is_a_404_and_their_ledger_is_not_listed(brand, other_brand):
    [theirs] = make_members(other_brand, 1)
    with other_brand.scope():
        points.adjust_points(other_brand.tenant, theirs, 5, reason="x", as_of=NOW)
    api = brand.api()
    assert_error(api.get(f"/api/v1/points/members/{theirs}/"), 404)
    assert_error(post_json(api, "/api/v1/points/spend/", {"member_id": theirs, "points": 1, "kind": "exchange"}), 404)
    assert_error(post_json(api, "/api/v1/points/adjust/", {"member_id": theirs, "points": 1, "reason": "x"}), 404)
    assert api.get("/api/v1/points/").json()["results"] == []
    assert post_json(api, "/api/v1/points/award/", {"member_ids": [theirs], "points": 5, "key": "k", "reason": "r"}).json() == {"credited": 0}
    with other_brand.scope():
        assert PointsEntry.objects.count() == 1
