from coupons import tasks
from coupons.models import Coupon
from coupons.schedule import BEAT_SCHEDULE
from coupons import services
from tests.coupons.factories import at, make_members, make_template


def test_the_scheduled_task_expires_every_brands_coupons_past_their_end(brand, other_brand):
    for b in (brand, other_brand):
        members = make_members(b, 2)
        template = make_template(b, valid_days=1)
        with b.scope():
            services.issue_coupons(b.tenant, template, members, as_of=at("2026-03-10 12:00"))
    tasks.expire_coupons_everywhere.delay(at("2026-03-11 00:00").isoformat())
    for b in (brand, other_brand):
        with b.scope():
            assert set(Coupon.objects.values_list("status", flat=True)) == {"expired"}


def test_the_beat_entry_names_the_task_that_exists():
    entry = BEAT_SCHEDULE["coupons-expire"]
    from scrm.celery import app

    assert entry["task"] in app.tasks
