"""Time the campaign work the issue sets a target for, on an existing (large) brand.

    manage.py bench_campaigns --tenant bench --members 100000

A campaign with a day-0 guide task and a day-0 message enrols ``--members`` members with the
same INSERT … SELECT the triggers use, then runs its due steps (target: both within 30 s for
100,000 members), runs them again (nothing to do), and times the guide's task page with 200 open
tasks (target <= 150 ms), and the guide and store performance reports of the whole brand over
the last 30 days. The campaign and what it created are deleted at the end.
Each figure depends on the machine's load: note ``uptime`` with it.
"""
import os
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import reports, services
from campaigns.models import Campaign, Enrolment, GuideTask, Message, Step, StepRun
from members.models import Member
from scrm.models import Staff, Tenant
from scrm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Benchmark enrolment, day-0 steps and the guide's task page on one brand."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="bench", help="slug of the brand")
        parser.add_argument("--members", type=int, default=100_000, help="members to enrol")

    def handle(self, *args, tenant, members, **options):
        try:
            brand = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No brand with slug {tenant!r}.") from None
        with tenant_context(brand):
            campaign = Campaign.objects.create(
                tenant=brand, name="bench", status=Campaign.Status.ACTIVE, trigger="schedule", schedule="once"
            )
            try:
                self.run(brand, campaign, members)
            finally:
                self.clean_up(campaign)

    def clean_up(self, campaign):
        """One DELETE per table: Django's cascade would load every enrolment into memory first."""
        with transaction.atomic(), connection.cursor() as cursor:
            for model in (Message, GuideTask, StepRun, Enrolment):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
            campaign.delete()

    def timed(self, label, work):
        started = time.perf_counter()
        result = work()
        load = "/".join(f"{n:.2f}" for n in os.getloadavg())
        self.stdout.write(f"{label}: {time.perf_counter() - started:.2f} s  (load {load})  "
                          f"{result if result is not None else ''}")
        return result

    def run(self, tenant, campaign, size):
        # Quiet hours would hold the message step: measure at 10:00 tenant time today.
        as_of = timezone.now().astimezone(tenant.zone).replace(hour=10, minute=0, second=0, microsecond=0)
        Step.objects.create(tenant=tenant, campaign=campaign, position=0, action="guide_task",
                            script="{name}您好，{favourite_category}新品到了")
        Step.objects.create(tenant=tenant, campaign=campaign, position=1, action="message", channel="console",
                            script="{name}，本周新品到店")
        ids = Member.objects.filter(owner_guide__isnull=False).order_by("pk").values("pk")[:size]
        total = time.perf_counter()
        enrolled = self.timed("enrol (INSERT … SELECT)", lambda: services.enrol_members(
            campaign, Member.objects.filter(pk__in=ids), as_of
        ))
        # Contact pressure would hold members touched by earlier runs; the bench wants a clean day.
        self.timed("day-0 steps", lambda: services.run_due_steps(tenant, as_of, campaign_ids=[campaign.pk]).as_dict())
        self.stdout.write(f"enrolled {enrolled:,}; enrol + day-0 steps: {time.perf_counter() - total:.2f} s (target 30 s)")
        self.stdout.write(f"  tasks {GuideTask.objects.filter(campaign=campaign).count():,}, "
                          f"messages {Message.objects.filter(campaign=campaign).count():,}, "
                          f"step runs {StepRun.objects.filter(campaign=campaign).count():,}")
        self.timed("day-0 steps again (nothing to do)", lambda: services.run_due_steps(
            tenant, as_of + timedelta(minutes=5), campaign_ids=[campaign.pk]).as_dict())
        self.guide_page(campaign)
        self.timed("guide performance report, every guide, last 30 days", lambda: len(reports.guide_performance(
            tenant, as_of.date() - timedelta(days=29), as_of.date())["rows"]))
        self.timed("store performance report, every store, last 30 days", lambda: len(reports.store_performance(
            tenant, as_of.date() - timedelta(days=29), as_of.date())["rows"]))

    def guide_page(self, campaign, open_tasks=200):
        """Time /guide/ for a guide with exactly ``open_tasks`` open tasks: the bench campaign's
        tasks beyond that are closed for the measurement (they go with the campaign afterwards)."""
        mine = GuideTask.objects.filter(campaign=campaign, status=GuideTask.Status.OPEN)
        guide = None
        for guide_id, made in mine.values_list("guide_id").annotate(n=Count("pk")).order_by("-n"):
            others = GuideTask.objects.filter(guide_id=guide_id, status=GuideTask.Status.OPEN).exclude(campaign=campaign)
            if others.count() + made >= open_tasks > others.count():
                guide = Staff.objects.get(pk=guide_id)
                keep = open_tasks - others.count()
                break
        if guide is None:
            self.stdout.write(f"/guide/: no guide can have exactly {open_tasks} open tasks")
            return
        extra = mine.filter(guide=guide).order_by("due_at", "pk").values_list("pk", flat=True)[keep:]
        GuideTask.objects.filter(pk__in=list(extra)).update(status=GuideTask.Status.SKIPPED)
        self.stdout.write(f"guide {guide.name}: "
                          f"{GuideTask.objects.filter(guide=guide, status=GuideTask.Status.OPEN).count():,} open tasks")
        client = Client()
        client.force_login(guide.user)
        client.get("/guide/")
        samples, sql = [], []
        for _i in range(7):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                answer = client.get("/guide/")
                samples.append(time.perf_counter() - started)
            sql.append(sum(float(q["time"]) for q in queries.captured_queries))
        assert answer.status_code == 200, answer.status_code
        load = "/".join(f"{n:.2f}" for n in os.getloadavg())
        self.stdout.write(f"/guide/: median {sorted(samples)[3] * 1000:.0f} ms over 7 requests, of which SQL "
                          f"{sorted(sql)[3] * 1000:.0f} ms in {len(queries.captured_queries)} queries (target 150 ms) "
                          f"(load {load})")
