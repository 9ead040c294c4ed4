"""Time the campaign work the issue sets a target for, on an existing (large) brand.

    manage.py bench_campaigns --tenant bench --members 100000

A campaign with a day-0 guide task and a day-0 message enrols ``--members`` members with the
same INSERT … SELECT the triggers use, then runs its due steps (target: both within 30 s for
100,000 members), runs them again (nothing to do), and times the guide's task page with 200 open
tasks (target <= 150 ms). The campaign and what it created are deleted at the end.
"""
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, GuideTask, Message, Step, StepRun
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
            campaign = self.run(brand, members)
            with transaction.atomic():
                Message.objects.filter(campaign=campaign).delete()
                campaign.delete()

    def timed(self, label, work):
        started = time.perf_counter()
        result = work()
        self.stdout.write(f"{label}: {time.perf_counter() - started:.2f} s  {result if result is not None else ''}")
        return result

    def run(self, tenant, size):
        # Quiet hours would hold the message step: measure at 10:00 tenant time today.
        as_of = timezone.now().astimezone(tenant.zone).replace(hour=10, minute=0, second=0, microsecond=0)
        campaign = Campaign.objects.create(
            tenant=tenant, name="bench", status=Campaign.Status.ACTIVE, trigger="schedule", schedule="once"
        )
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
        return campaign

    def guide_page(self, campaign):
        guide_ids = list(GuideTask.objects.filter(campaign=campaign).values_list("guide_id", flat=True).distinct()[:1])
        if not guide_ids:
            return
        guide = Staff.objects.get(pk=guide_ids[0])
        open_tasks = GuideTask.objects.filter(guide=guide, status="open")
        self.stdout.write(f"guide {guide.name}: {open_tasks.count():,} open tasks (the page lists the first 300)")
        client = Client()
        client.force_login(guide.user)
        client.get("/guide/")
        samples = []
        for _i in range(5):
            started = time.perf_counter()
            answer = client.get("/guide/")
            samples.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.status_code
        self.stdout.write(f"/guide/: median {sorted(samples)[2] * 1000:.0f} ms over 5 requests (target 150 ms)")
