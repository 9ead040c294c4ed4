"""The demo brand arrives with lifecycle history to look at."""
from datetime import datetime, timedelta, timezone as dt_timezone

from lifecycle import services
from lifecycle.models import DailyStageSnapshot, LifecycleRun, StageChange
from lifecycle.receivers import DEMO_HISTORY_DAYS
from members.demo import seed_demo
from scrm.tenancy import tenant_context

AS_OF = datetime(2026, 11, 20, 9, 30, tzinfo=dt_timezone.utc)


def test_the_demo_brand_has_ninety_days_of_stage_history(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = seed_demo(as_of=AS_OF, slug="demo", members=150)
    tenant = result.tenant

    with tenant_context(tenant):
        days = sorted(set(DailyStageSnapshot.objects.values_list("day", flat=True)))
        today = services.local_day(tenant, AS_OF)
        assert days[0] == today - timedelta(days=DEMO_HISTORY_DAYS)
        assert days[-1] == today
        assert len(days) == DEMO_HISTORY_DAYS + 1
        # The trend adds up to the members scored, day after day, and members move between stages.
        latest = services.last_scheduled_run(tenant)
        assert latest.as_of == AS_OF and latest.kind == LifecycleRun.Kind.FULL
        moved = StageChange.objects.exclude(from_stage="").exclude(from_stage="introduction")
        assert moved.exists()
        first_day = DailyStageSnapshot.objects.filter(day=days[0])
        assert sum(first_day.values_list("count", flat=True)) > 0
