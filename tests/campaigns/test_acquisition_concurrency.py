"""Joins through one live code arriving at once, each thread on its own database connection:
the round-robin stays fair and in order, caps are never passed, a replayed key joins once."""
import threading
from collections import Counter

import pytest
from django.db import connection

from campaigns import acquisition
from campaigns.models import LiveCodeGuideDay, LiveCodeJoin
from coupons.models import Coupon
from scrm.models import Staff
from scrm.services import create_staff

from ..conftest import PASSWORD
from .helpers import at, template

NOW = at("2026-03-02 10:00")
THREADS = 12


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


def three_guides(brand):
    third = create_staff(brand.tenant, "acme_guide3", PASSWORD, "导购丙", Staff.Role.GUIDE, [brand.store])
    return [brand.guide, brand.guide2, third]


def make_code(brand, **data):
    with brand.scope():
        return acquisition.save_live_code(brand.tenant, {
            "name": "门店海报", "channel_type": "poster", "store": brand.store, **data}, as_of=NOW)


def join(code, i, key=None):
    return acquisition.join(code, door="api", key=key or f"t:{i}", mobile=f"139{i:08d}", as_of=NOW)


@pytest.mark.django_db(transaction=True)
def test_joins_at_once_split_evenly_over_three_guides_in_round_robin_order(brand):
    guides = three_guides(brand)
    code = make_code(brand, pool=guides)
    outcomes = run_at_once(brand, lambda i: join(code, i))
    assert all(isinstance(o, acquisition.JoinResult) for o in outcomes), outcomes
    with brand.scope():
        order = list(LiveCodeJoin.objects.order_by("pk").values_list("guide_id", flat=True))
    assert order == [g.pk for g in guides] * (THREADS // 3)
    assert Counter(order) == {g.pk: THREADS // 3 for g in guides}


@pytest.mark.django_db(transaction=True)
def test_joins_at_once_never_pass_the_daily_cap_and_overflow_to_the_backup(brand):
    guides = three_guides(brand)
    backup = create_staff(brand.tenant, "acme_backup", PASSWORD, "值班", Staff.Role.GUIDE, [brand.store])
    code = make_code(brand, pool=guides, daily_cap=3, backup_guide=backup)
    outcomes = run_at_once(brand, lambda i: join(code, i))
    assert all(isinstance(o, acquisition.JoinResult) for o in outcomes), outcomes
    owners = Counter(o.guide.pk for o in outcomes)
    assert owners == {guides[0].pk: 3, guides[1].pk: 3, guides[2].pk: 3, backup.pk: 3}
    with brand.scope():
        counters = dict(LiveCodeGuideDay.objects.values_list("guide_id", "joins"))
    assert counters == {guides[0].pk: 3, guides[1].pk: 3, guides[2].pk: 3, backup.pk: 3}


@pytest.mark.django_db(transaction=True)
def test_one_join_sent_many_times_at_once_joins_once_with_one_coupon(brand):
    code = make_code(brand, pool=[brand.guide, brand.guide2])
    with brand.scope():
        code.welcome_coupon = template(brand)
        code.save()
    outcomes = run_at_once(brand, lambda i: join(code, 7, key="same-callback"), count=6)
    assert all(isinstance(o, acquisition.JoinResult) for o in outcomes), outcomes
    assert sum(not o.replayed for o in outcomes) == 1
    assert len({o.join.pk for o in outcomes}) == 1
    with brand.scope():
        assert LiveCodeJoin.objects.count() == 1
        assert Coupon.objects.count() == 1
        assert LiveCodeGuideDay.objects.get().joins == 1
