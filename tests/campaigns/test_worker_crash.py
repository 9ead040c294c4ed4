"""A worker killed in the middle of materialising a campaign's steps, then the steps run again:
every (enrolment, step) ends with exactly one step run, task, message and coupon, none missing."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils.translation import gettext as _

from campaigns import services
from campaigns.models import Enrolment, GuideTask, Message, StepRun
from coupons.models import Coupon, CouponTemplate
from members.models import Member

from .helpers import T0, campaign, many_members, template

MEMBERS, BATCH = 1500, 25
CRASHING_CLIENT = "scrm-steps-crash-test"


def _test_database_url():
    """The URL of the database this test runs on, for a separate process to use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}?application_name={CRASHING_CLIENT}"


def _wait_until_the_server_let_go(deadline):
    """A Postgres backend finishes the statement (a COMMIT, say) its killed client sent last; the
    test reads the database only once that backend is gone."""
    if connection.vendor != "postgresql":
        return
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [CRASHING_CLIENT])
            if cursor.fetchone()[0] == 0:
                return
        assert time.monotonic() < deadline, "the killed worker's database session did not end"


WORKER = """
from campaigns import services
from scrm.models import Tenant
from scrm.tenancy import tenant_context
from datetime import datetime
with tenant_context(Tenant.objects.get(slug="acme")) as tenant:
    services.run_due_steps(tenant, datetime.fromisoformat("{as_of}"), campaign_ids=[{campaign}], batch_size={batch})
"""


def run_steps_in_a_worker_and_kill_it_after(brand, sop, runs, log):
    """Start the step run in another process, wait until ``runs`` step runs are committed, SIGKILL it."""
    env = dict(os.environ, DATABASE_URL=_test_database_url(), CELERY_TASK_ALWAYS_EAGER="1")
    code = WORKER.format(as_of=T0.isoformat(), campaign=sop.pk, batch=BATCH)
    deadline = time.monotonic() + 180
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
        try:
            with brand.scope():
                while StepRun.objects.filter(campaign=sop).count() < runs:
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "the worker did not get going"
                    try:
                        process.wait(timeout=0.05)
                    except subprocess.TimeoutExpired:
                        pass
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    _wait_until_the_server_let_go(deadline)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_whole_batches_and_the_rerun_makes_each_touch_exactly_once(brand, tmp_path):
    with brand.scope():
        gift, pack = template(brand, name="回访礼券 ¥20"), template(brand, name="新品券 ¥10")
        many_members(brand, MEMBERS)
        sop = campaign(brand, [
            {"delay_days": 0, "action": "guide_task", "script": "{name}您好，送您{coupon}：{coupon_code}",
             "coupon_template": gift},
            {"delay_days": 0, "action": "message", "channel": "console", "script": "{name}，新品到店"},
            {"delay_days": 0, "action": "coupon", "coupon_template": pack},
        ], trigger="schedule", schedule="once")
        task_step, message_step, coupon_step = sop.steps.order_by("position")
        assert services.enrol_members(sop, Member.objects.all(), T0) == MEMBERS

    run_steps_in_a_worker_and_kill_it_after(brand, sop, 6 * BATCH, tmp_path / "worker.log")

    with brand.scope():
        runs = Counter(StepRun.objects.filter(campaign=sop).values_list("step_id", flat=True))
        assert 0 < sum(runs.values()) < 3 * MEMBERS, ("the kill came too late to land mid-run", runs)
        # Whatever committed is whole: each run of the task step has its task and its coupon.
        assert GuideTask.objects.count() == runs[task_step.pk]
        assert Message.objects.count() == runs[message_step.pk]
        assert Coupon.objects.count() == runs[task_step.pk] + runs[coupon_step.pk]

    with brand.scope():
        result = services.run_due_steps(brand.tenant, T0, campaign_ids=[sop.pk])
        assert result.done == 3 * MEMBERS - sum(runs.values())
        assert result.skipped == result.held == 0
        enrolments = set(Enrolment.objects.filter(campaign=sop).values_list("pk", flat=True))
        assert len(enrolments) == MEMBERS
        pairs = Counter(StepRun.objects.filter(campaign=sop, status="done").values_list("enrolment_id", "step_id"))
        expected = {(e, s.pk) for e in enrolments for s in (task_step, message_step, coupon_step)}
        assert set(pairs) == expected and set(pairs.values()) == {1}
        tasks = Counter(GuideTask.objects.values_list("enrolment_id", flat=True))
        assert set(tasks) == enrolments and set(tasks.values()) == {1}
        messages = Counter(Message.objects.values_list("idempotency_key", flat=True))
        assert set(messages) == {f"step:{message_step.pk}:enrolment:{e}" for e in enrolments}
        assert set(messages.values()) == {1}
        coupons = Counter(Coupon.objects.values_list("member_id", "issue_key"))
        assert len(coupons) == 2 * MEMBERS and set(coupons.values()) == {1}
        assert Counter(member for member, _key in coupons) == Counter(
            {member: 2 for member in Member.objects.values_list("pk", flat=True)})
        # Each task hands over the coupon issued to its member by that step, code and all.
        for task in GuideTask.objects.select_related("coupon")[:50]:
            assert task.coupon.issue_key.startswith(f"campaign:{sop.pk}:step:{task_step.pk}:")
            assert task.coupon.display_code in task.script
        assert [t.issued_count for t in CouponTemplate.objects.filter(pk__in=(gift.pk, pack.pk))] == [MEMBERS] * 2


@pytest.mark.django_db
def test_tasks_and_messages_made_in_one_statement_carry_the_same_text_the_script_renderer_gives(brand):
    script = "{name}|{coupon}|{coupon_code}|{favourite_category}|{guide}|{store}|{nickname}|100% 'ok'"
    with brand.scope():
        gift = template(brand, name="新客券 ¥66")
        braces = many_members(brand, 1, name="{coupon_code}")[0]
        blank = many_members(brand, 1, name="")[0]
        sop = campaign(brand, [
            {"delay_days": 0, "action": "guide_task", "script": script, "coupon_template": gift},
            {"delay_days": 0, "action": "message", "channel": "console", "script": script},
        ], trigger="schedule", schedule="once")
        services.enrol_members(sop, Member.objects.all(), T0)
        services.run_due_steps(brand.tenant, T0)
        for member in Member.objects.filter(pk__in=(braces, blank)).select_related("owner_guide", "home_store"):
            coupon = Coupon.objects.get(member=member)
            values = {
                "name": member.name or _("customer"), "coupon": gift.name, "coupon_code": coupon.display_code,
                "favourite_category": _("our new arrivals"), "guide": brand.guide.name, "store": brand.store.name,
            }
            assert "-" in coupon.display_code
            assert GuideTask.objects.get(member=member).script == services.render_script(script, values)
            assert GuideTask.objects.get(member=member).coupon_id == coupon.pk
            no_coupon = {**values, "coupon": "", "coupon_code": ""}
            assert Message.objects.get(member=member).body == services.render_script(script, no_coupon)
        assert GuideTask.objects.get(member_id=braces).script.startswith("{coupon_code}|新客券 ¥66|")
        assert Message.objects.get(member_id=blank).body.endswith("|{nickname}|100% 'ok'")
