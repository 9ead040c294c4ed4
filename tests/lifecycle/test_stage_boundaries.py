"""Every row of the stage table at its boundary, scored as of a frozen moment."""
from datetime import timedelta

import pytest

from lifecycle import services
from lifecycle.models import LifecycleRun, Rule, Stage, WarningRule

from .helpers import AS_OF, Shop, days_before, history, stage_of, state

MINUTE = timedelta(minutes=1)


@pytest.fixture
def shop(in_brand):
    return Shop(in_brand)


def score(brand, as_of=AS_OF):
    return services.score_full(brand.tenant, as_of)


def test_a_member_who_never_ordered_is_in_introduction_until_day_180_of_membership(shop, brand):
    day_179 = shop.member(joined_days_ago=179)
    almost_180 = shop.member(joined_at=days_before(180) + MINUTE)
    day_180 = shop.member(joined_days_ago=180)
    score(brand)
    assert stage_of(day_179) == Stage.INTRODUCTION
    assert stage_of(almost_180) == Stage.INTRODUCTION
    assert stage_of(day_180) == Stage.CHURNED
    assert state(day_180).rule == Rule.CHURNED_NEVER_BOUGHT


def test_a_last_order_89_days_ago_is_growth_and_90_days_ago_is_dormant(shop, brand):
    day_89 = shop.member()
    shop.order(day_89, days_before(89, hours=23, minutes=59))
    day_90 = shop.member()
    shop.order(day_90, days_before(90))
    score(brand)
    assert stage_of(day_89) == Stage.GROWTH
    assert stage_of(day_90) == Stage.DORMANT
    assert state(day_90).rule == Rule.DORMANT


def test_a_last_order_179_days_ago_is_dormant_and_180_days_ago_is_churned(shop, brand):
    day_179 = shop.member()
    shop.order(day_179, days_before(179, hours=23))
    day_180 = shop.member()
    shop.order(day_180, days_before(180))
    score(brand)
    assert stage_of(day_179) == Stage.DORMANT
    assert stage_of(day_180) == Stage.CHURNED
    assert state(day_180).rule == Rule.CHURNED_LAPSED


def test_three_orders_in_365_days_make_maturity_and_two_stay_growth(shop, brand):
    two = shop.member()
    shop.order(two, days_before(10))
    shop.order(two, days_before(200))
    shop.order(two, days_before(365))  # exactly 365 days ago: outside the window
    three = shop.member()
    shop.order(three, days_before(10))
    shop.order(three, days_before(200))
    shop.order(three, days_before(364, hours=23))
    score(brand)
    assert stage_of(two) == Stage.GROWTH
    assert state(two).orders_365 == 2
    assert state(two).orders_total == 3
    assert stage_of(three) == Stage.MATURITY
    assert state(three).orders_365 == 3


def test_a_refund_of_the_only_order_puts_the_member_back_in_introduction(shop, brand):
    member = shop.member(joined_days_ago=30)
    order = shop.order(member, days_before(5), total="299.00")
    score(brand)
    assert stage_of(member) == Stage.GROWTH
    shop.refund(order["external_id"], "299.00", "299.00")
    score(brand)
    row = state(member)
    assert row.stage == Stage.INTRODUCTION
    assert row.orders_total == 0
    assert row.first_order_at is None


def test_a_partly_refunded_order_counts_at_its_net_amount(shop, brand):
    member = shop.member()
    shop.order(member, days_before(5), total="300.00", refunded="120.50")
    score(brand)
    row = state(member)
    assert row.orders_total == 1
    assert str(row.spend_total) == "179.50"
    assert str(row.aov_90) == "179.50"


def test_a_member_who_deleted_the_guide_is_churned_until_they_buy_again(shop, brand):
    member = shop.member(joined_days_ago=100)
    shop.order(member, days_before(20))
    shop.event(member, "contact_deleted", days_before(10))
    score(brand)
    assert stage_of(member) == Stage.CHURNED
    assert state(member).rule == Rule.CHURNED_DELETED_CONTACT
    shop.order(member, days_before(1))
    score(brand)
    assert stage_of(member) == Stage.GROWTH
    assert history(member)[-1] == (Stage.CHURNED, Stage.GROWTH)


def test_orders_after_the_as_of_moment_are_not_seen(shop, brand):
    member = shop.member(joined_days_ago=30)
    shop.order(member, AS_OF + MINUTE)
    score(brand)
    assert stage_of(member) == Stage.INTRODUCTION
    assert state(member).last_order_at is None


def test_a_dormant_member_who_buys_again_is_a_win_back(shop, brand):
    member = shop.member()
    shop.order(member, days_before(120))
    score(brand, days_before(10))
    assert stage_of(member) == Stage.DORMANT
    shop.order(member, days_before(2))
    run = score(brand)
    assert stage_of(member) == Stage.GROWTH
    change = history(member)[-1]
    assert change == (Stage.DORMANT, Stage.GROWTH)
    assert run.changes["dormant→growth"] == 1


def test_no_order_for_60_days_raises_the_churn_warning_and_59_days_does_not(shop, brand):
    day_59 = shop.member()
    shop.order(day_59, days_before(59, hours=23))
    day_60 = shop.member()
    shop.order(day_60, days_before(60))
    score(brand)
    assert state(day_59).churn_warning is False
    assert state(day_60).churn_warning is True
    assert state(day_60).warning_rule == WarningRule.NO_RECENT_ORDER
    assert stage_of(day_60) == Stage.GROWTH


def test_an_order_value_down_by_half_raises_the_warning_and_a_smaller_drop_does_not(shop, brand):
    halved = shop.member()
    shop.order(halved, days_before(100), total="200.00")
    shop.order(halved, days_before(150), total="200.00")
    shop.order(halved, days_before(3), total="100.00")
    milder = shop.member()
    shop.order(milder, days_before(100), total="200.00")
    shop.order(milder, days_before(150), total="200.00")
    shop.order(milder, days_before(3), total="100.01")
    score(brand)
    assert state(halved).stage == Stage.MATURITY
    assert state(halved).churn_warning is True
    assert state(halved).warning_rule == WarningRule.AOV_DROP
    assert str(state(halved).aov_prev) == "200.00"
    assert state(milder).churn_warning is False


def test_dormant_and_churned_members_carry_no_warning(shop, brand):
    member = shop.member()
    shop.order(member, days_before(100))
    score(brand)
    assert stage_of(member) == Stage.DORMANT
    assert state(member).churn_warning is False


def test_running_again_with_the_same_as_of_changes_nothing(shop, brand):
    member = shop.member()
    shop.order(member, days_before(30))
    first = score(brand)
    since = state(member).stage_since
    second = score(brand)
    assert first.changes_total >= 1
    assert second.changes_total == 0
    assert second.members_scored == first.members_scored == 1
    assert state(member).stage_since == since
    assert state(member).run_id == first.pk
    assert LifecycleRun.objects.count() == 2

