"""Many writers on one member's points at once, each thread on its own database connection."""
import threading

import pytest
from django.db import connection
from django.db.models import Sum

from members import points
from members.models import PointsEntry
from tests.coupons.factories import at, make_members

NOW = at("2026-03-10 15:00")
THREADS = 8


def run_at_once(brand, work, count=THREADS):
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def target(i):
        try:
            with brand.scope():
                barrier.wait()
                outcomes[i] = work(i)
        except Exception as exc:  # the test asserts on what each thread met
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def ledger(brand, member):
    with brand.scope():
        total = PointsEntry.objects.filter(member_id=member).aggregate(s=Sum("points"))["s"] or 0
        return total, points.balance_of(brand.tenant, member)


@pytest.mark.django_db(transaction=True)
def test_spends_at_once_never_overdraw_and_the_balance_stays_the_sum_of_the_ledger(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        points.adjust_points(brand.tenant, member, 100, reason="开卡礼", as_of=NOW)
    outcomes = run_at_once(brand, lambda i: points.spend_points(brand.tenant, member, 30, kind="exchange", as_of=NOW))
    spent = [o for o in outcomes if isinstance(o, PointsEntry)]
    refused = [o for o in outcomes if isinstance(o, points.PointsError)]
    assert len(spent) == 3 and len(refused) == THREADS - 3, outcomes
    assert {e.code for e in refused} == {"insufficient_points"}
    assert ledger(brand, member) == (10, 10)
    assert sorted(e.balance_after for e in spent) == [10, 40, 70]


@pytest.mark.django_db(transaction=True)
def test_earning_and_spending_at_once_keep_the_balance_equal_to_the_ledger(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        points.adjust_points(brand.tenant, member, 40, reason="开卡礼", as_of=NOW)

    def work(i):
        if i % 2:
            return points.award_points(brand.tenant, [member], 10, key=f"game:{i}", reason="游戏", as_of=NOW)
        return points.spend_points(brand.tenant, member, 10, kind="lottery", as_of=NOW)

    outcomes = run_at_once(brand, work)
    assert not [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, points.PointsError)], outcomes
    total, balance = ledger(brand, member)
    assert total == balance >= 0
    assert balance == 40 + 10 * sum(1 for i in range(THREADS) if i % 2) - 10 * sum(isinstance(o, PointsEntry) for o in outcomes)


@pytest.mark.django_db(transaction=True)
def test_signing_in_from_several_devices_at_once_earns_once(brand):
    [member] = make_members(brand, 1)
    outcomes = run_at_once(brand, lambda i: points.sign_in(brand.tenant, member, as_of=NOW))
    assert all(isinstance(o, points.SignIn) for o in outcomes), outcomes
    assert sum(o.first_today for o in outcomes) == 1
    assert ledger(brand, member) == (5, 5)
