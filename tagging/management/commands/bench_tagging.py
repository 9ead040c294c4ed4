"""Time the tagging work the issue sets targets for, on an existing (large) brand.

    manage.py bench_tagging --tenant demo

1. bulk tagging of 100,000 members (target <= 10 s), then removing the tag again;
2. the count of a segment of 4 conditions including a tag and a metric (target <= 1 s);
3. the automatic tag refresh of all members (target <= 60 s), first run and a second, steady run.

The demo tag groups are installed when missing. Tags given here are removed at the end.
"""
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from members.models import Member
from scrm.models import Tenant
from scrm.tenancy import tenant_context
from tagging.demo import install_demo_tags
from tagging.models import MemberTag, Tag, TagChange, TagGroup, TagSource
from tagging.services import apply_tags, members_matching, refresh_automatic_tags


class Command(BaseCommand):
    help = "Benchmark bulk tagging, segment counts and the automatic tag refresh on one brand."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo", help="slug of the brand")
        parser.add_argument("--bulk", type=int, default=100_000, help="members to tag at once")
        parser.add_argument("--skip-refresh", action="store_true")

    def handle(self, *args, tenant, bulk, skip_refresh, **options):
        try:
            brand = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No brand with slug {tenant!r}.") from None
        with tenant_context(brand):
            self.run(brand, bulk, skip_refresh)

    def timed(self, label, work, target=None):
        start = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - start
        verdict = "" if target is None else (" (target <= %gs: %s)" % (target, "met" if seconds <= target else "MISSED"))
        self.stdout.write(f"{label}: {seconds:.2f}s{verdict} -> {result}")
        return result

    def run(self, brand, bulk, skip_refresh):
        members = Member.objects.count()
        self.stdout.write(f"brand {brand.slug}: {members:,} members")
        if not TagGroup.objects.exists():
            install_demo_tags(brand)
        koc = Tag.objects.get(name="KOC")
        vip = Tag.objects.get(name="星推官")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE members_member; ANALYZE tagging_membertag; ANALYZE tagging_tagchange")
        ids = Member.objects.order_by("pk").values_list("pk", flat=True)
        low, high = ids[0], ids[min(bulk, members) - 1]
        chosen = Member.objects.filter(pk__gte=low, pk__lte=high)
        as_of = timezone.now()

        def tag_many():
            with transaction.atomic():
                return apply_tags(brand, chosen, add=[koc.pk], source=TagSource.CAMPAIGN)

        self.timed(f"bulk tagging of {bulk:,} members", tag_many, 10)
        self.timed("bulk tagging of the same members again (no change)", tag_many, 10)

        rules = {"all": [
            {"field": "tags", "op": "has_any", "value": [koc.pk]},
            {"field": "orders_total", "op": "gte", "value": 2},
            {"field": "gender", "op": "eq", "value": "female"},
            {"field": "days_since_last_order", "op": "lte", "value": 365},
        ]}
        for attempt in (1, 2):
            self.timed(
                f"count of a 4-condition segment (tag, two metrics, gender), run {attempt}",
                lambda: members_matching(brand, rules, as_of).count(), 1,
            )
        brief = [
            ("bought 5+ times, 60%+ of spend on basic items", {"all": [
                {"field": "orders_total", "op": "gte", "value": 5},
                {"field": "spend_share", "op": "gte", "value": 60, "skus": ["UT-AP01", "UT-AP11", "UT-AC11", "UT-HO02"]},
            ]}),
            ("birthday this month, growth or maturity", {"all": [
                {"field": "birthday_month", "op": "this_month"}, {"field": "stage", "op": "in", "value": ["growth", "maturity"]},
            ]}),
            ("joined in the last 60 days, never bought", {"all": [
                {"field": "joined_at", "op": "within_last_days", "value": 60}, {"field": "orders_total", "op": "eq", "value": 0},
            ]}),
            ("dormant, coupon expiring within 7 days", {"all": [
                {"field": "stage", "op": "eq", "value": "dormant"},
                {"field": "coupon_expiring", "op": "within_next_days", "value": 7},
            ]}),
        ]
        for label, tree in brief:
            self.timed(f"count: {label}", lambda tree=tree: members_matching(brand, tree, as_of).count())

        def untag():
            with transaction.atomic():
                return apply_tags(brand, chosen, remove=[koc.pk, vip.pk], source=TagSource.CAMPAIGN)

        self.timed(f"bulk removal from {bulk:,} members", untag, 10)
        TagChange.objects.filter(tag__in=[koc, vip]).delete()

        if skip_refresh:
            return
        groups = TagGroup.objects.filter(kind=TagGroup.Kind.AUTOMATIC).count()
        self.timed(f"automatic refresh of all members, {groups} groups", lambda: refresh_automatic_tags(brand, as_of), 60)
        self.timed("automatic refresh again, nothing changed", lambda: refresh_automatic_tags(brand, as_of), 60)
        self.stdout.write(f"member tags held: {MemberTag.objects.count():,}")
