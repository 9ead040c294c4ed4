"""The nightly schedule per brand time zone, incremental scoring on arrival, and versioned rules."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from lifecycle import services, tasks
from lifecycle.models import LifecycleRun, RULE_DEFAULTS, Stage, StageRulesVersion
from scrm.celery import app

from .helpers import AS_OF, Shop, days_before, stage_of, state

UTC = dt_timezone.utc


def _claims(now):
    return {(run.tenant.slug, run.scheduled_for.isoformat(), run.kind) for run in services.claim_due_nightly_runs(now)}


def test_the_nightly_run_starts_after_two_in_the_morning_in_each_brands_own_time_zone(brand, other_brand):
    other_brand.tenant.time_zone = "America/New_York"
    other_brand.tenant.save()
    # 17:59 UTC on Sunday 29 June 2025: 01:59 on the 30th in Shanghai, 13:59 on the 29th in New York.
    assert _claims(datetime(2025, 6, 29, 17, 59, tzinfo=UTC)) == {("rival", "2025-06-29", "full")}
    assert _claims(datetime(2025, 6, 29, 18, 1, tzinfo=UTC)) == {("acme", "2025-06-30", "nightly")}
    assert _claims(datetime(2025, 6, 29, 18, 16, tzinfo=UTC)) == set()
    # 02:01 on the 30th in New York (EDT, UTC-4).
    assert _claims(datetime(2025, 6, 30, 5, 59, tzinfo=UTC)) == set()
    assert _claims(datetime(2025, 6, 30, 6, 1, tzinfo=UTC)) == {("rival", "2025-06-30", "nightly")}


def test_the_dispatcher_runs_each_claimed_night_once_as_of_the_moment_it_fired(brand):
    shop = Shop(brand)
    with brand.scope():
        member = shop.member(joined_days_ago=10)
        shop.order(member, days_before(1))
    fired = datetime(2025, 6, 29, 18, 5, tzinfo=UTC)
    tasks.dispatch_nightly_runs(fired.isoformat())
    tasks.dispatch_nightly_runs((fired + timedelta(minutes=15)).isoformat())
    runs = LifecycleRun.objects.unscoped().filter(tenant=brand.tenant)
    assert runs.count() == 1
    run = runs.get()
    assert run.status == LifecycleRun.Status.DONE
    assert run.as_of == fired
    assert stage_of(member) == Stage.GROWTH


def test_beat_checks_the_nightly_schedule_every_quarter_hour():
    entry = app.conf.beat_schedule["lifecycle-nightly-runs"]
    assert entry["task"] == "lifecycle.tasks.dispatch_nightly_runs"
    assert entry["schedule"] == timedelta(minutes=15)
    assert app.amqp.router.route({}, "lifecycle.tasks.score_members")["queue"].name == "scoring"


@pytest.mark.django_db(transaction=True)
def test_a_first_purchase_moves_a_member_to_growth_as_soon_as_it_is_committed(brand):
    shop = Shop(brand)
    now = timezone.now()
    with brand.scope():
        member = shop.member(joined_at=now - timedelta(days=3))
        assert stage_of(member) == Stage.INTRODUCTION
        shop.order(member, now - timedelta(minutes=1), total="199.00")
    row = state(member)
    assert row.stage == Stage.GROWTH
    assert row.orders_total == 1
    run = LifecycleRun.objects.unscoped().get(pk=row.run_id)
    assert run.kind == LifecycleRun.Kind.INCREMENTAL
    assert run.changes == {"introduction→growth": 1}


def test_a_brands_rules_never_change_another_brands_stages(brand, other_brand):
    members = {}
    for b in (brand, other_brand):
        with b.scope():
            shop = Shop(b)
            members[b] = shop.member()
            shop.order(members[b], days_before(45))
    services.update_rules(brand.tenant, {"dormant_after_days": 40, "warning_days": 30})
    services.score_full(brand.tenant, AS_OF)
    services.score_full(other_brand.tenant, AS_OF)
    assert stage_of(members[brand]) == Stage.DORMANT
    assert stage_of(members[other_brand]) == Stage.GROWTH
    assert services.current_rules(other_brand.tenant).values() == RULE_DEFAULTS


def test_every_rules_change_is_kept_with_who_when_and_the_old_and_new_values(in_brand):
    now = AS_OF
    rules, changed = services.update_rules(in_brand.tenant, {"mature_min_orders": 4}, changed_by=in_brand.operator, now=now)
    assert changed and rules.version == 1
    _same, changed_again = services.update_rules(in_brand.tenant, {"mature_min_orders": 4}, changed_by=in_brand.owner)
    assert not changed_again
    rules, _changed = services.update_rules(in_brand.tenant, {"aov_drop_pct": 40}, label="api-key:erp")
    assert rules.version == 2
    first, second = StageRulesVersion.objects.order_by("version")
    assert first.previous["mature_min_orders"] == 3 and first.values["mature_min_orders"] == 4
    assert first.changed_by == in_brand.operator and first.changed_at == now
    assert second.previous["aov_drop_pct"] == 50 and second.values["aov_drop_pct"] == 40
    assert second.changed_by_label == "api-key:erp"


def test_rules_that_cannot_work_together_are_refused_with_the_field_that_is_wrong(in_brand):
    with pytest.raises(ValidationError) as refused:
        services.update_rules(in_brand.tenant, {"dormant_after_days": 200})
    assert "churn_after_days" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        services.update_rules(in_brand.tenant, {"warning_days": 90})
    assert "warning_days" in refused.value.message_dict
    assert services.current_rules(in_brand.tenant).version == 0


def test_a_dry_run_counts_who_would_move_without_changing_anyone(in_brand):
    shop = Shop(in_brand)
    lapsing = shop.member()
    shop.order(lapsing, days_before(50))
    shop.order(lapsing, days_before(20))
    steady = shop.member()
    shop.order(steady, days_before(5))
    services.score_full(in_brand.tenant, AS_OF)
    preview = services.dry_run(in_brand.tenant, {**RULE_DEFAULTS, "dormant_after_days": 15, "warning_days": 10})
    assert preview["moves"] == [{"from": "growth", "to": "dormant", "count": 1}]
    assert preview["moved"] == 1
    assert preview["members"] == 2
    assert stage_of(lapsing) == Stage.GROWTH
    assert services.current_rules(in_brand.tenant).version == 0
