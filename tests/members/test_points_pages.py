from members import points
from members.models import PointsRules, Tier
from members.services import upsert_members
from tests.coupons.factories import at, make_members

NOW = at("2026-03-10 15:00")


def test_an_operator_saves_points_rules_and_adds_a_tier(brand):
    client = brand.session(brand.operator)
    assert client.get("/members/points/settings/").status_code == 200
    saved = client.post("/members/points/settings/", {
        "form": "rules", "rules-points_per_yuan": "2", "rules-sign_in_points": "3", "rules-streak_days": "7",
        "rules-streak_bonus": "10", "rules-expiry": "never",
    })
    assert saved.status_code == 302
    added = client.post("/members/points/tiers/new/", {"name": "金卡", "rank": "3", "threshold": "5000", "benefits": "生日礼"})
    assert added.status_code == 302
    with brand.scope():
        assert PointsRules.objects.get().sign_in_points == 3
        assert Tier.objects.get().name == "金卡"
    assert "金卡" in client.get("/members/points/settings/").content.decode()


def test_an_adjustment_on_the_ledger_page_needs_a_reason_and_is_shown(brand):
    [member] = make_members(brand, 1)
    client = brand.session(brand.operator)
    assert client.post(f"/members/{member}/points/", {"points": "25", "reason": "客诉补偿"}).status_code == 302
    page = client.get(f"/members/{member}/points/").content.decode()
    assert "客诉补偿" in page and "+25" in page
    overdraw = client.post(f"/members/{member}/points/", {"points": "-26", "reason": "扣减"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "25 points" in overdraw


def test_a_guide_sees_their_members_ledger_but_cannot_adjust(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        upsert_members(brand.tenant, [(0, {"external_id": "M0000", "owner_guide": brand.guide})])
    assert brand.session(brand.guide).get(f"/members/{member}/points/").status_code == 200
    assert brand.session(brand.guide).post(f"/members/{member}/points/", {"points": "5", "reason": "x"}).status_code == 403
    assert brand.session(brand.guide2).get(f"/members/{member}/points/").status_code == 404


def test_the_points_panel_shows_tier_balance_and_recent_entries(brand, rf):
    from django.template.loader import render_to_string

    [member] = make_members(brand, 1)
    with brand.scope():
        tier = Tier.objects.create(tenant=brand.tenant, name="银卡", rank=2, threshold=0)
        points.adjust_points(brand.tenant, member, 40, reason="开卡礼", as_of=NOW)
        points.recompute_tiers(brand.tenant, as_of=NOW)
        request = rf.get("/")
        request.tenant, request.staff = brand.tenant, brand.operator
        from members.models import Member

        html = render_to_string("members/_points_panel.html", {"member": Member.objects.get(pk=member), "request": request})
    assert tier.name in html and "开卡礼" in html and ">40<" in html


def test_another_brands_tier_is_a_404(brand, other_brand):
    with other_brand.scope():
        theirs = Tier.objects.create(tenant=other_brand.tenant, name="x", rank=1, threshold=0)
    assert brand.session(brand.operator).get(f"/members/points/tiers/{theirs.pk}/").status_code == 404
