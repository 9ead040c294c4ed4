"""Many issuers and tills at once, each thread on its own database connection."""
import threading
from decimal import Decimal

import pytest
from django.db import connection

from coupons import services
from coupons.models import Coupon, CouponTemplate
from tests.coupons.factories import at, make_members, make_template

NOW = at("2026-03-10 15:00")
THREADS = 8


def run_at_once(brand, work, count=THREADS):
    """Run ``work(i)`` in ``count`` threads released together; returns results or exceptions in order."""
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


@pytest.mark.django_db(transaction=True)
def test_issuers_running_at_once_never_issue_more_than_the_stock(brand):
    members = make_members(brand, THREADS * 3)
    template = make_template(brand, total_stock=10, per_member_limit=None)
    slices = [members[i * 3:(i + 1) * 3] for i in range(THREADS)]
    outcomes = run_at_once(brand, lambda i: services.issue_coupons(brand.tenant, template, slices[i], as_of=NOW))
    assert all(isinstance(o, services.IssueResult) for o in outcomes), outcomes
    assert sum(o.issued for o in outcomes) == 10
    with brand.scope():
        assert Coupon.objects.filter(template=template).count() == 10
        assert CouponTemplate.objects.get(pk=template.pk).issued_count == 10


@pytest.mark.django_db(transaction=True)
def test_issuers_running_at_once_give_one_member_no_more_than_the_limit(brand):
    member = make_members(brand, 1)
    template = make_template(brand, per_member_limit=2)
    outcomes = run_at_once(brand, lambda i: services.issue_coupons(brand.tenant, template, member, as_of=NOW))
    assert all(isinstance(o, services.IssueResult) for o in outcomes), outcomes
    assert sorted(o.issued for o in outcomes) == [0] * (THREADS - 2) + [1, 1]
    with brand.scope():
        assert Coupon.objects.filter(member_id=member[0]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_tills_redeeming_one_coupon_at_once_exactly_one_succeeds(brand):
    member = make_members(brand, 1)
    template = make_template(brand)
    with brand.scope():
        services.issue_coupons(brand.tenant, template, member, as_of=NOW)
        code = Coupon.objects.get().code

    def till(i):
        return services.redeem_coupon(
            brand.tenant, code, order_external_id=f"SO-{i}", amount=Decimal("100"), as_of=NOW, store=brand.store
        )

    outcomes = run_at_once(brand, till)
    won = [o for o in outcomes if isinstance(o, services.Redemption)]
    lost = [o for o in outcomes if isinstance(o, services.CouponError)]
    assert len(won) == 1 and len(lost) == THREADS - 1, outcomes
    assert {error.code for error in lost} == {"already_redeemed"}
    with brand.scope():
        assert Coupon.objects.get().order_external_id == won[0].coupon.order_external_id


@pytest.mark.django_db(transaction=True)
def test_the_same_till_retrying_at_once_gets_the_same_redemption_every_time(brand):
    member = make_members(brand, 1)
    template = make_template(brand)
    with brand.scope():
        services.issue_coupons(brand.tenant, template, member, as_of=NOW)
        code = Coupon.objects.get().code
    outcomes = run_at_once(
        brand, lambda i: services.redeem_coupon(brand.tenant, code, order_external_id="SO-1", amount=Decimal("100"), as_of=NOW)
    )
    assert all(isinstance(o, services.Redemption) for o in outcomes), outcomes
    assert sum(not o.replayed for o in outcomes) == 1
    assert {o.coupon.order_external_id for o in outcomes} == {"SO-1"}
