"""Rebuilding lifecycle history does not run campaigns for days long past."""
from datetime import timedelta

from campaigns.models import Enrolment
from lifecycle import services as lifecycle

from .helpers import T0, campaign, member, order


def test_a_backfill_enrols_only_the_stage_changes_of_its_last_day(brand, django_capture_on_commit_callbacks):
    with brand.scope():
        welcome = campaign(brand, [], trigger="stage_entered", trigger_stage="growth")
        early = member(brand, joined_at=T0 - timedelta(days=40))
        late = member(brand, joined_at=T0 - timedelta(days=40))
        order(brand, early, T0 - timedelta(days=20))
        order(brand, late, T0 - timedelta(hours=12))

    with django_capture_on_commit_callbacks(execute=True):
        runs = lifecycle.backfill(brand.tenant, (T0 - timedelta(days=30)).date(), T0.date())

    with brand.scope():
        enrolled = set(Enrolment.objects.filter(campaign=welcome).values_list("member_id", flat=True))
    # Both members entered growth during the rebuilt days; only the last day's entry is news.
    assert len(runs) == 31
    assert enrolled == {late.pk}
    assert early.pk not in enrolled
