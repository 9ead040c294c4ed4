"""The preferred store: the store of most of a member's orders in the last 365 days, kept by the
scoring runs like the other metrics."""
import random
from datetime import timedelta

import pytest

from lifecycle import services
from lifecycle.models import MemberLifecycle
from scrm.models import Store

from .helpers import AS_OF, DAY, Shop, days_before, state


@pytest.fixture
def shop(in_brand):
    return Shop(in_brand)


def preferred(member):
    return state(member).preferred_store_id


def test_the_preferred_store_is_where_most_orders_of_the_year_were_placed(shop, brand):
    """Worked example: two orders at store 1 this year; three at store 2, but two of them 365 days
    ago or more. In the last 365 days it is 2 against 1, so store 1 is preferred, although the
    member's latest order was at store 2."""
    member = shop.member()
    shop.order(member, days_before(10), store=brand.store)
    shop.order(member, days_before(200), store=brand.store)
    shop.order(member, days_before(5), store=brand.store2)
    shop.order(member, days_before(365), store=brand.store2)
    shop.order(member, days_before(700), store=brand.store2)
    services.score_full(brand.tenant, AS_OF)
    assert preferred(member) == brand.store.pk
    assert state(member).orders_365 == 3


def test_a_tie_goes_to_the_store_of_the_latest_order(shop, brand):
    member = shop.member()
    shop.order(member, days_before(30), store=brand.store)
    shop.order(member, days_before(3), store=brand.store2)
    services.score_full(brand.tenant, AS_OF)
    assert preferred(member) == brand.store2.pk


def test_refunded_orders_do_not_count_and_partly_refunded_ones_do(shop, brand):
    member = shop.member()
    shop.order(member, days_before(3), store=brand.store2, total="100.00", refunded="100.00")
    shop.order(member, days_before(4), store=brand.store2, total="100.00", refunded="100.00")
    shop.order(member, days_before(20), store=brand.store, total="100.00", refunded="40.00")
    services.score_full(brand.tenant, AS_OF)
    assert preferred(member) == brand.store.pk


def test_a_member_without_store_orders_this_year_has_no_preferred_store(shop, brand):
    never = shop.member()
    online = shop.member()
    shop.order(online, days_before(2))
    lapsed = shop.member()
    shop.order(lapsed, days_before(400), store=brand.store)
    services.score_full(brand.tenant, AS_OF)
    assert [preferred(m) for m in (never, online, lapsed)] == [None, None, None]


def test_the_preferred_store_moves_when_an_order_leaves_the_year_on_the_nightly_run(shop, brand):
    member = shop.member(joined_days_ago=800)
    shop.order(member, days_before(364, hours=12), store=brand.store)
    shop.order(member, days_before(30), store=brand.store)
    shop.order(member, days_before(10), store=brand.store2)
    services.score_full(brand.tenant, AS_OF)
    assert preferred(member) == brand.store.pk  # 2 against 1
    services.score_nightly(brand.tenant, AS_OF + DAY)
    assert preferred(member) == brand.store2.pk  # 1 against 1 once the oldest order left the year: the later wins


def test_an_incremental_run_gives_the_preferred_store_of_a_new_order_at_once(shop, brand):
    member = shop.member()
    shop.order(member, days_before(50), store=brand.store)
    services.score_full(brand.tenant, AS_OF)
    later = AS_OF + timedelta(hours=3)
    shop.order(member, later - timedelta(hours=1), store=brand.store2)
    shop.order(member, later - timedelta(hours=2), store=brand.store2)
    services.score_members(brand.tenant, [member.pk], later)
    assert preferred(member) == brand.store2.pk


def test_nightly_runs_keep_the_preferred_store_a_complete_full_run_computes(shop, brand):
    stores = [brand.store, brand.store2, Store.objects.create(tenant=brand.tenant, code="ACME-03", name="acme 3")]
    rnd = random.Random(17)
    start = AS_OF - 40 * DAY
    members = [shop.member(joined_days_ago=900, as_of=start) for _ in range(30)]
    for member in members:
        for _ in range(rnd.randint(0, 6)):
            placed = start - timedelta(hours=rnd.randrange(420 * 24)) + timedelta(hours=rnd.randrange(40 * 24))
            shop.order(member, placed, store=rnd.choice(stores + [None]),
                       refunded=rnd.choice(["0", "0", "0", "100.00"]))
    services.score_full(brand.tenant, start, complete=True)
    moved = set()
    for day in range(1, 41):
        before = dict(MemberLifecycle.objects.values_list("member_id", "preferred_store_id"))
        services.score_nightly(brand.tenant, start + day * DAY)
        after = dict(MemberLifecycle.objects.values_list("member_id", "preferred_store_id"))
        moved |= {pk for pk in after if after[pk] != before[pk]}
    check = services.score_full(brand.tenant, start + 40 * DAY, complete=True)
    assert moved, "the generated orders should move some preferred stores over 40 days"
    assert check.changes_total == 0
    assert not MemberLifecycle.objects.filter(run_id=check.pk).exists()


def test_a_member_whose_join_date_moves_back_unscored_is_scored_in_full_on_the_nightly_run(shop, brand):
    """Time-moved members keep their stored totals; one without a stored row gets all of them."""
    member = shop.member(joined_at=AS_OF + 10 * DAY, external_id="LATE-1")
    services.score_full(brand.tenant, AS_OF)
    assert not MemberLifecycle.objects.filter(member=member).exists()
    shop.member(joined_at=AS_OF + DAY - 180 * DAY - timedelta(hours=1), external_id="LATE-1")
    services.score_nightly(brand.tenant, AS_OF + DAY)
    row = state(member)
    assert (row.stage, row.rule, row.orders_total, row.preferred_store_id) == ("churned", "churned_never_bought", 0, None)
