from decimal import Decimal

from members import points
from members.models import MemberTier, Tier
from members.points_tasks import dispatch_points_nightly
from members.schedule import BEAT_SCHEDULE
from tests.coupons.factories import at, make_members


def test_the_nightly_run_starts_at_three_in_the_brands_zone_and_recomputes_tiers(brand):
    [member] = make_members(brand, 1)
    with brand.scope():
        silver = Tier.objects.create(tenant=brand.tenant, name="银卡", rank=1, threshold=Decimal("10"))
        points.adjust_points(brand.tenant, member, 50, reason="x", as_of=at("2026-03-09 10:00"))
        from members.models import TierSettings

        TierSettings.objects.create(tenant=brand.tenant, basis="points")
    dispatch_points_nightly.delay(at("2026-03-10 02:05").isoformat())
    with brand.scope():
        assert not MemberTier.objects.filter(tier__isnull=False).exists()
    dispatch_points_nightly.delay(at("2026-03-10 03:05").isoformat())
    with brand.scope():
        assert MemberTier.objects.get(member_id=member).tier_id is None
    # Adjustments are not earnings: points from orders, sign-ins and activities qualify.
    with brand.scope():
        points.award_points(brand.tenant, [member], 20, key="quiz", reason="答题", as_of=at("2026-03-10 01:00"))
    dispatch_points_nightly.delay(at("2026-03-11 03:05").isoformat())
    with brand.scope():
        assert MemberTier.objects.get(member_id=member).tier_id == silver.pk


def test_the_beat_entry_names_the_task_that_exists():
    from scrm.celery import app

    assert BEAT_SCHEDULE["points-nightly"]["task"] in app.tasks
