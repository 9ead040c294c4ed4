from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from members import points
from members.models import MemberDay, MemberTier, PointsAccount, PointsEntry, PointsRules, Tier, TierChange, TierSettings
from members.services import ingest_orders
from tests.coupons.factories import at, make_members

NOW = at("2026-03-10 15:00")


def ledger_sum(brand, member_id):
    with brand.scope():
        return PointsEntry.objects.filter(member_id=member_id).aggregate(s=Sum("points"))["s"] or 0


def balance(brand, member_id):
    with brand.scope():
        return points.balance_of(brand.tenant, member_id)


def order(member_external_id="M0000", external_id="SO-1", total="299.50", **fields):
    return {"external_id": external_id, "member_external_id": member_external_id, "placed_at": NOW,
            "total": Decimal(total), **fields}


def ingest(brand, capture, *orders):
    with brand.scope(), capture(execute=True):
        ingest_orders(brand.tenant, list(enumerate(orders)))


def test_an_order_earns_a_point_per_yuan_once_however_often_it_arrives(brand, django_capture_on_commit_callbacks):
    [member] = make_members(brand, 1)
    ingest(brand, django_capture_on_commit_callbacks, order())
    ingest(brand, django_capture_on_commit_callbacks, order())
    assert balance(brand, member) == ledger_sum(brand, member) == 299
    with brand.scope():
        entry = PointsEntry.objects.get(member_id=member)
    assert (entry.kind, entry.points, entry.balance_after) == ("order", 299, 299)


def test_the_rate_comes_from_the_brands_points_rules(brand, django_capture_on_commit_callbacks):
    [member] = make_members(brand, 1)
    with brand.scope():
        PointsRules.objects.create(tenant=brand.tenant, points_per_yuan=Decimal("2.5"))
    ingest(brand, django_capture_on_commit_callbacks, order(total="100.00"))
    assert balance(brand, member) == 250


def test_a_refund_takes_back_the_refunded_share_and_a_full_refund_the_rest(brand, django_capture_on_commit_callbacks):
    [member] = make_members(brand, 1)
    ingest(brand, django_capture_on_commit_callbacks, order(total="400.00"))
    ingest(brand, django_capture_on_commit_callbacks, order(total="400.00", status="partially_refunded", refunded_amount=Decimal("100.00")))
    assert balance(brand, member) == 300
    ingest(brand, django_capture_on_commit_callbacks, order(total="400.00", status="refunded"))
    ingest(brand, django_capture_on_commit_callbacks, order(total="400.00", status="refunded"))
    assert balance(brand, member) == ledger_sum(brand, member) == 0
    with brand.scope():
        kinds = list(PointsEntry.objects.order_by("pk").values_list("kind", "points"))
    assert kinds == [("order", 400), ("refund", -100), ("refund", -300)]


def test_a_refund_after_the_points_were_spent_leaves_a_negative_balance_and_blocks_spending(brand, django_capture_on_commit_callbacks):
    [member] = make_members(brand, 1)
    ingest(brand, django_capture_on_commit_callbacks, order(total="100.00"))
    with brand.scope():
        points.spend_points(brand.tenant, member, 80, kind="exchange", as_of=NOW)
    ingest(brand, django_capture_on_commit_callbacks, order(total="100.00", status="refunded"))
    assert balance(brand, member) == ledger_sum(brand, member) == -80
    with brand.scope(), pytest.raises(points.PointsError) as refused:
        points.spend_points(brand.tenant, member, 1, kind="lottery", as_of=NOW)
    assert refused.value.code == "insufficient_points"


def test_spending_more_than_the_balance_is_refused_with_both_numbers(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        points.adjust_points(brand.tenant, member, 50, reason="补偿", as_of=NOW)
        with pytest.raises(points.PointsError) as refused:
            points.spend_points(brand.tenant, member, 51, kind="flash_sale", as_of=NOW)
    assert refused.value.code == "insufficient_points"
    assert "50" in refused.value.message and "51" in refused.value.message
    assert balance(brand, member) == 50


def test_a_spend_with_a_key_is_made_once(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        points.adjust_points(brand.tenant, member, 100, reason="活动", as_of=NOW)
        first = points.spend_points(brand.tenant, member, 30, kind="exchange", key="EX-9", as_of=NOW)
        again = points.spend_points(brand.tenant, member, 30, kind="exchange", key="EX-9", as_of=NOW)
    assert first.pk == again.pk
    assert balance(brand, member) == 70


def test_a_manual_adjustment_needs_a_reason_and_cannot_overdraw(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        with pytest.raises(points.PointsError) as refused:
            points.adjust_points(brand.tenant, member, 10, reason="  ", as_of=NOW)
        assert refused.value.code == "reason_required"
        points.adjust_points(brand.tenant, member, 10, reason="客诉补偿", as_of=NOW, staff=brand.operator)
        with pytest.raises(points.PointsError):
            points.adjust_points(brand.tenant, member, -11, reason="扣减", as_of=NOW)
        entry = PointsEntry.objects.get()
    assert (entry.reason, entry.created_by_id) == ("客诉补偿", brand.operator.pk)


def test_signing_in_twice_on_one_shanghai_day_earns_once(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        first = points.sign_in(brand.tenant, member, as_of=at("2026-03-10 00:00"))
        second = points.sign_in(brand.tenant, member, as_of=at("2026-03-10 23:59:59"))
        next_day = points.sign_in(brand.tenant, member, as_of=at("2026-03-11 00:00"))
    assert (first.first_today, second.first_today, next_day.first_today) == (True, False, True)
    assert second.entry.pk == first.entry.pk
    assert next_day.streak == 2
    assert balance(brand, member) == 10


def test_every_seventh_day_in_a_row_earns_the_streak_bonus_and_a_gap_starts_again(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        earned = [points.sign_in(brand.tenant, member, as_of=at("2026-03-01 09:00") + timedelta(days=d)).entry.points for d in range(8)]
        after_gap = points.sign_in(brand.tenant, member, as_of=at("2026-03-11 09:00"))
    assert earned == [5, 5, 5, 5, 5, 5, 25, 5]
    assert after_gap.streak == 1


def test_activity_points_reach_each_member_once_per_activity(brand):
    members = make_members(brand, 3)
    with brand.scope():
        assert points.award_points(brand.tenant, members, 20, key="survey:2026-03", reason="问卷", as_of=NOW) == 3
        assert points.award_points(brand.tenant, members, 20, key="survey:2026-03", reason="问卷", as_of=NOW) == 0
    assert [balance(brand, m) for m in members] == [20, 20, 20]


def test_points_earned_in_a_year_expire_at_the_end_of_the_next_unless_spent(brand):
    a, b = make_members(brand, 2)
    with brand.scope():
        PointsRules.objects.create(tenant=brand.tenant, expiry=PointsRules.Expiry.END_OF_NEXT_YEAR)
        points.adjust_points(brand.tenant, a, 100, reason="2024", as_of=at("2024-06-01 10:00"))
        points.adjust_points(brand.tenant, a, 40, reason="2025", as_of=at("2025-06-01 10:00"))
        points.spend_points(brand.tenant, a, 30, kind="exchange", as_of=at("2025-07-01 10:00"))
        points.adjust_points(brand.tenant, b, 10, reason="2025", as_of=at("2025-06-01 10:00"))
        assert points.expire_points(brand.tenant, as_of=at("2025-12-31 23:59")) == 0
        assert points.expire_points(brand.tenant, as_of=at("2026-01-01 00:00")) == 1
        assert points.expire_points(brand.tenant, as_of=at("2026-01-01 00:05")) == 0
    assert balance(brand, a) == ledger_sum(brand, a) == 40
    assert balance(brand, b) == 10


def make_tiers(brand, hold_days=365, basis="spend"):
    with brand.scope():
        TierSettings.objects.create(tenant=brand.tenant, basis=basis, hold_days=hold_days)
        return [
            Tier.objects.create(tenant=brand.tenant, name=name, rank=rank, threshold=Decimal(threshold), benefits="")
            for name, rank, threshold in [("普卡", 1, "0"), ("银卡", 2, "1000"), ("金卡", 3, "5000")]
        ]


def test_tiers_follow_spend_in_the_last_twelve_months_and_changes_are_logged(brand, django_capture_on_commit_callbacks):
    a, b, c = make_members(brand, 3)
    card, silver, gold = make_tiers(brand)
    ingest(brand, django_capture_on_commit_callbacks,
           order("M0001", "SO-B", "1200.00"), order("M0002", "SO-C", "6000.00"),
           {**order("M0002", "SO-OLD", "9000.00"), "placed_at": NOW - timedelta(days=400)})
    with brand.scope():
        assert points.recompute_tiers(brand.tenant, as_of=NOW) == 3
        tiers = dict(MemberTier.objects.values_list("member_id", "tier_id"))
        assert points.recompute_tiers(brand.tenant, as_of=NOW + timedelta(days=1)) == 0
        assert TierChange.objects.count() == 3
    assert tiers == {a: card.pk, b: silver.pk, c: gold.pk}


def test_a_reached_tier_holds_until_its_end_then_falls_to_what_the_member_qualifies_for(brand, django_capture_on_commit_callbacks):
    [member] = make_members(brand, 1)
    card, silver, gold = make_tiers(brand, hold_days=30)
    ingest(brand, django_capture_on_commit_callbacks, order(total="1500.00"))
    with brand.scope():
        points.recompute_tiers(brand.tenant, as_of=NOW)
        ingest_orders(brand.tenant, [(0, order(total="1500.00", status="refunded"))])
        points.recompute_tiers(brand.tenant, as_of=NOW + timedelta(days=29))
        held = MemberTier.objects.get(member_id=member)
        expiring = list(points.tiers_expiring_within(brand.tenant, 7, as_of=NOW + timedelta(days=25)))
        points.recompute_tiers(brand.tenant, as_of=NOW + timedelta(days=30))
        fallen = MemberTier.objects.get(member_id=member)
        last = TierChange.objects.first()
    assert held.tier_id == silver.pk and held.expires_at == NOW + timedelta(days=30)
    assert expiring == [member]
    assert fallen.tier_id == card.pk
    assert (last.from_tier_id, last.to_tier_id) == (silver.pk, card.pk)


def test_tiers_can_follow_points_earned(brand):
    [member] = make_members(brand, 1)
    card, silver, gold = make_tiers(brand, basis="points")
    with brand.scope():
        points.award_points(brand.tenant, [member], 1200, key="launch", reason="上新", as_of=NOW - timedelta(days=1))
        points.recompute_tiers(brand.tenant, as_of=NOW)
        assert MemberTier.objects.get(member_id=member).tier_id == silver.pk


def test_a_paid_membership_ends_after_its_last_day(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        points.set_paid_membership(brand.tenant, member, paid_until=date(2026, 3, 31))
        assert points.end_lapsed_paid_memberships(brand.tenant, as_of=at("2026-03-31 23:59")) == 0
        assert points.end_lapsed_paid_memberships(brand.tenant, as_of=at("2026-04-01 00:00")) == 1
        assert MemberTier.objects.get(member_id=member).paid_member is False


def test_the_member_day_falls_on_the_18th_and_on_the_last_day_of_shorter_months(brand):
    with brand.scope():
        MemberDay.objects.create(tenant=brand.tenant, name="会员日", day_of_month=18)
        MemberDay.objects.create(tenant=brand.tenant, name="月末", day_of_month=31)
        assert [d.name for d in points.member_days_on(brand.tenant, date(2026, 3, 18))] == ["会员日"]
        assert points.next_member_day(brand.tenant, date(2026, 2, 19))[0] == date(2026, 2, 28)
        assert points.next_member_day(brand.tenant, date(2026, 3, 1))[0] == date(2026, 3, 18)


def test_points_of_one_brand_never_reach_another(brand, other_brand):
    [mine] = make_members(brand, 1)
    [theirs] = make_members(other_brand, 1)
    with brand.scope(), pytest.raises(points.PointsError) as refused:
        points.adjust_points(brand.tenant, theirs, 10, reason="x", as_of=NOW)
    assert refused.value.code == "unknown_member"
    with other_brand.scope():
        assert not PointsAccount.objects.exists()
