"""The lifecycle benchmark (``make bench``): scoring speed on a brand of 1.1 million members.

Seeds the brand with ``seed_demo`` when it has fewer members than asked, then times, as of now:
a full run on a brand that was never scored (every row written), a full run again (nothing to
write: the cost of reading), a nightly run for the next day after 1% of the members ordered, and
an incremental run for 10,000 members who just ordered. Prints members per second and the peak
memory of this process.
"""
import random
import resource
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone

from lifecycle import services
from lifecycle.models import DailyStageSnapshot, LifecycleRun, MemberLifecycle, StageChange
from lifecycle.signals import run_finished
from members.models import Event, Member, Order, OrderLine
from scrm.models import Tenant
from scrm.tenancy import tenant_context

TARGETS = {"full": 45.0, "nightly": 5.0, "incremental": 2.0, "memory_mb": 500}


@contextmanager
def downstream_detached():
    """What reacts to a finished run (automatic tags, campaign enrolment) runs as its own tasks on
    other queues; without a broker it would run inside the timed call, so it is left out here."""
    saved = list(run_finished.receivers)
    run_finished.receivers.clear()
    run_finished.sender_receivers_cache.clear()
    try:
        yield
    finally:
        run_finished.receivers[:] = saved
        run_finished.sender_receivers_cache.clear()


def peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Command(BaseCommand):
    help = "Benchmark lifecycle scoring on a large brand (PostgreSQL): full, nightly and incremental runs."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="bench", help="Slug of the benchmark brand (default %(default)s).")
        parser.add_argument("--members", type=int, default=1_100_000, help="Members to seed when missing.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--new-order-share", type=float, default=0.01, help="Share of members ordering on the nightly day.")
        parser.add_argument("--incremental", type=int, default=10_000, help="Members in the incremental run.")
        parser.add_argument("--keep-state", action="store_true", help="Do not forget earlier scores before the first full run.")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" and not settings.DEBUG:
            self.stderr.write("The targets are for PostgreSQL; set DATABASE_URL to measure them.")
        slug = options["tenant"]
        tenant = Tenant.objects.filter(slug=slug).first()
        have = Member.objects.unscoped().filter(tenant=tenant).count() if tenant else 0
        if have < options["members"]:
            self.stdout.write(f"Seeding {options['members'] - have:,} members into {slug!r} (once)…")
            started = time.perf_counter()
            call_command(
                "seed_demo", tenant=slug, members=options["members"] - have, seed=options["seed"],
                no_signals=True, force_add=have > 0, verbosity=1,
            )
            self.stdout.write(f"  seeded in {time.perf_counter() - started:.0f} s")
            tenant = Tenant.objects.get(slug=slug)
            if connection.vendor == "postgresql":
                # What autovacuum does to a table that has settled: the visibility map lets the
                # covering indexes answer without reading the rows.
                with connection.cursor() as cursor:
                    for model in (Member, Order, OrderLine, Event):
                        cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        members = Member.objects.unscoped().filter(tenant=tenant).count()
        orders = Order.objects.unscoped().filter(tenant=tenant).count()
        self.stdout.write(f"Brand {slug!r}: {members:,} members, {orders:,} orders ({orders / max(members, 1):.1f} each).")

        with tenant_context(tenant), downstream_detached():
            results = self._measure(tenant, members, options)
        self._report(results)

    # ------------------------------------------------------------ the runs

    def _measure(self, tenant, members, options):
        results = []
        if not options["keep_state"]:
            self.stdout.write("Forgetting earlier scores…")
            for model in (StageChange, DailyStageSnapshot, MemberLifecycle, LifecycleRun):
                with connection.cursor() as cursor:
                    cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE tenant_id = %s", [tenant.pk])
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    for model in (MemberLifecycle, StageChange):
                        cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        self._settle()
        as_of = timezone.now()
        latest = services.latest_run(tenant)
        if latest is not None and latest.as_of >= as_of:
            # A run kept from an earlier benchmark is a simulated day ahead: carry on after it, so
            # that the full run re-reads only what changed since, as a full run on a real day does.
            as_of = latest.as_of + timedelta(hours=1)

        first = "full (rows kept, later moment)" if latest is not None else "full (first: every row written)"
        self._timed(results, first, lambda: services.score_full(tenant, as_of))
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {MemberLifecycle._meta.db_table}")
                cursor.execute(f"ANALYZE {StageChange._meta.db_table}")
        self._timed(results, "full (again, same day)", lambda: services.score_full(tenant, as_of), target=TARGETS["full"])

        next_day = as_of + timedelta(days=1)
        buyers = self._sample(tenant, int(members * options["new_order_share"]), salt=1)
        self._add_orders(tenant, buyers, next_day - timedelta(hours=6), "N")
        self._timed(
            results, f"nightly (+1 day, {len(buyers):,} buyers)", lambda: services.score_nightly(tenant, next_day),
            target=TARGETS["nightly"],
        )

        touched = self._sample(tenant, options["incremental"], salt=2)
        moment = next_day + timedelta(hours=1)
        self._add_orders(tenant, touched, moment - timedelta(minutes=5), "I")
        self._timed(
            results, f"incremental ({len(touched):,} members)", lambda: services.score_members(tenant, touched, moment),
            target=TARGETS["incremental"],
        )
        return results

    def _settle(self):
        """With autovacuum off (some benchmark servers), the rows earlier benchmark runs rewrote stay
        behind as dead rows and every later run reads past them; a deployment's autovacuum clears
        them in the background. Do its work here, outside the timings, and say so."""
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            if cursor.fetchone()[0] == "on":
                return
            self.stdout.write("autovacuum is off on this server: vacuuming the lifecycle tables first (untimed).")
            for model in (MemberLifecycle, StageChange, Order):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")

    def _timed(self, results, label, work, target=None):
        started = time.perf_counter()
        run = work()
        seconds = time.perf_counter() - started
        run.refresh_from_db()
        results.append((label, run, seconds, target))
        self.stdout.write(
            f"  {label}: {seconds:.2f} s, {run.members_scored:,} members scored, {run.changes_total:,} changes, "
            f"peak memory {peak_memory_mb():.0f} MB"
        )
        return run

    def _sample(self, tenant, count, salt):
        """``count`` member ids spread over the whole id range (a seeded random sample)."""
        ids = Member.objects.unscoped().filter(tenant=tenant).order_by("pk").values_list("pk", flat=True)
        low, high = ids.first(), ids.last()
        rnd = random.Random(f"{tenant.pk}-{salt}-{low}-{high}")
        chosen = set()
        while len(chosen) < count:
            chosen.update(rnd.randint(low, high) for _ in range(count - len(chosen)))
        existing = []
        picked = sorted(chosen)
        for start in range(0, len(picked), 5000):
            existing += list(
                Member.objects.unscoped().filter(tenant=tenant, pk__in=picked[start:start + 5000]).values_list("pk", flat=True)
            )
        return existing

    def _add_orders(self, tenant, member_ids, placed_at, tag):
        """One paid order for each member, written in bulk (a benchmark shortcut past the API)."""
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        now = timezone.now()
        Order.objects.unscoped().bulk_create(
            [
                Order(
                    tenant=tenant, external_id=f"BENCH-{tag}-{stamp}-{pk}", member_id=pk, placed_at=placed_at,
                    total=Decimal("199.00"), created_at=now, updated_at=now,
                )
                for pk in member_ids
            ],
            batch_size=5000,
        )

    # ------------------------------------------------------------ the report

    def _report(self, results):
        self.stdout.write("")
        self.stdout.write(f"{'run':<42} {'seconds':>8} {'members':>10} {'members/s':>11} {'target':>8}")
        for label, run, seconds, target in results:
            rate = run.members_scored / seconds if seconds else 0
            verdict = "" if target is None else (" ok" if seconds <= target else " MISSED")
            target_text = f"{target:.0f} s" if target else ""
            self.stdout.write(
                f"{label:<42} {seconds:>8.2f} {run.members_scored:>10,} {rate:>11,.0f} {target_text:>8}{verdict}"
            )
        memory = peak_memory_mb()
        verdict = "ok" if memory <= TARGETS["memory_mb"] else "MISSED"
        self.stdout.write(f"peak memory of this process: {memory:.0f} MB (target {TARGETS['memory_mb']} MB) {verdict}")
