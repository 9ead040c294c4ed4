"""Full, nightly, incremental runs and backfill agree with each other."""
from datetime import timedelta

from lifecycle import services
from lifecycle.models import DailyStageSnapshot, LifecycleRun, MemberLifecycle
from members.models import Member

from .helpers import (
    AS_OF, DAY, Shop, apply_edit, changes_by_external_id, days_before, generate, states_by_external_id,
)

START = AS_OF - 120 * DAY


def test_the_nightly_change_driven_run_equals_a_full_run_day_after_day(brand, other_brand):
    """Brand A scores nightly (only what changed), brand B fully every day: same data, same answers."""
    nightly, full = brand, other_brand
    edits = generate([nightly, full], seed=7, start=START, days=120, members=80)
    rescored = []
    for day in range(121):
        as_of = START + day * DAY
        for _day, edit in [e for e in edits if e[0] == day]:
            apply_edit(nightly, edit)
            apply_edit(full, edit)
        if day == 60:
            for b in (nightly, full):
                services.update_rules(b.tenant, {"dormant_after_days": 75, "warning_days": 45})
        run = services.score_nightly(nightly.tenant, as_of)
        services.score_full(full.tenant, as_of, complete=True)
        assert states_by_external_id(nightly) == states_by_external_id(full), f"day {day}"
        if day:
            rescored.append(run.members_scored)
            assert run.fell_back_to_full is (day == 60)
    assert changes_by_external_id(nightly) == changes_by_external_id(full)
    total = Member.objects.unscoped().filter(tenant=nightly.tenant).count()
    # Change-driven: a normal night re-scores a fraction of the membership.
    assert sorted(rescored)[len(rescored) // 2] < total / 4


def test_a_full_run_after_a_nightly_run_on_the_same_day_finds_nothing_to_change(brand):
    generate([brand], seed=11, start=START, days=40, members=60)
    services.score_full(brand.tenant, START)
    for day in range(1, 41):
        services.score_nightly(brand.tenant, START + day * DAY)
    check = services.score_full(brand.tenant, START + 40 * DAY)
    complete = services.score_full(brand.tenant, START + 40 * DAY, complete=True)
    for run in (check, complete):
        assert run.changes_total == 0
        assert run.members_scored == 60
        assert not MemberLifecycle.objects.unscoped().filter(tenant=brand.tenant, run_id=run.pk).exists()


def test_a_full_run_keeps_profile_metrics_that_nothing_changed_and_refreshes_the_rest(brand, other_brand):
    """Favourite categories and last interactions are re-read only where lines or events changed,
    and the result equals reading everything again."""
    partial, complete = brand, other_brand
    edits = generate([partial, complete], seed=13, start=START, days=30, members=60)
    for b in (partial, complete):
        services.score_full(b.tenant, START, complete=True)
    for day in range(1, 31):
        for _day, edit in [e for e in edits if e[0] == day]:
            apply_edit(partial, edit)
            apply_edit(complete, edit)
        if day % 7 == 0:
            services.score_full(partial.tenant, START + day * DAY)
            services.score_full(complete.tenant, START + day * DAY, complete=True)
            assert states_by_external_id(partial) == states_by_external_id(complete), f"day {day}"


def test_an_incremental_run_gives_touched_members_what_a_full_run_gives_them(brand, other_brand):
    incremental, full = brand, other_brand
    generate([incremental, full], seed=3, start=START, days=1, members=50)
    for b in (incremental, full):
        services.score_full(b.tenant, START)
    later = START + 5 * DAY + timedelta(hours=7)
    touched = ["NEW-1"] + [f"G3-{i:04d}" for i in range(10)]
    for b in (incremental, full):
        shop = Shop(b)
        with b.scope():
            fresh = shop.member(joined_days_ago=2, as_of=later, external_id="NEW-1")
            shop.order(fresh, later - timedelta(hours=1), external_id="NEW-O1")
            for m in Member.objects.filter(external_id__in=touched[1:]):
                shop.order(m, later - timedelta(hours=2), total="59.00", external_id=f"T-{m.external_id}")
    ids = Member.objects.unscoped().filter(tenant=incremental.tenant, external_id__in=touched).values_list("pk", flat=True)
    run = services.score_members(incremental.tenant, list(ids), later)
    services.score_full(full.tenant, later)
    assert run.members_scored == len(touched)
    a, b = states_by_external_id(incremental), states_by_external_id(full)
    assert {key: a[key] for key in touched} == {key: b[key] for key in touched}
    assert MemberLifecycle.objects.unscoped().get(tenant=incremental.tenant, member__external_id="NEW-1").stage == "growth"


def test_a_backfill_rebuilds_the_same_history_as_running_every_night(brand, other_brand):
    backfilled, nightly = brand, other_brand
    generate([backfilled, nightly], seed=5, start=START, days=30, members=60)
    for day in range(31):
        services.score_nightly(nightly.tenant, services.local_moment(nightly.tenant, (START + day * DAY).date()))
    services.score_full(backfilled.tenant, AS_OF)  # state from before the rebuild is forgotten
    runs = services.backfill(backfilled.tenant, START.date(), (START + 30 * DAY).date())
    assert len(runs) == 31
    assert runs[0].fell_back_to_full and not runs[-1].fell_back_to_full
    assert changes_by_external_id(backfilled) == changes_by_external_id(nightly)
    assert states_by_external_id(backfilled) == states_by_external_id(nightly)

    def snapshots(b):
        return sorted(
            DailyStageSnapshot.objects.unscoped().filter(tenant=b.tenant)
            .values_list("day", "stage", "churn_warning", "count")
        )

    assert snapshots(backfilled) == snapshots(nightly)
    assert len({day for day, *_ in snapshots(backfilled)}) == 31


def test_every_run_is_recorded_with_its_counts(in_brand):
    shop = Shop(in_brand)
    new = shop.member(joined_days_ago=10)
    buyer = shop.member(joined_days_ago=10)
    shop.order(buyer, days_before(1))
    run = services.score_full(in_brand.tenant, AS_OF)
    run.refresh_from_db()
    assert run.status == LifecycleRun.Status.DONE
    assert run.members_scored == 2
    assert run.changes == {"new→introduction": 1, "new→growth": 1}
    assert run.changes_total == 2
    assert run.started_at <= run.finished_at
    assert new.pk and buyer.pk


def test_a_backfill_announces_only_its_last_run(brand, django_capture_on_commit_callbacks):
    from lifecycle.signals import run_finished

    generate([brand], seed=9, start=START, days=10, members=20)
    heard = []

    def listen(sender, tenant_id, run_id, **kwargs):
        heard.append(run_id)

    run_finished.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            runs = services.backfill(brand.tenant, START.date(), (START + 10 * DAY).date())
        assert heard == [runs[-1].pk]
        heard.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.backfill(brand.tenant, START.date(), (START + 3 * DAY).date(), announce=False)
        assert heard == []
    finally:
        run_finished.disconnect(listen)
