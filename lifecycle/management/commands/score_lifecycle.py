from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lifecycle import services
from scrm.models import Tenant
from scrm.tenancy import tenant_context


class Command(BaseCommand):
    help = (
        "Score members' lifecycle stages. Without --full, runs the change-driven nightly run (a full run "
        "when there is no previous run or the rules changed). --backfill-from rebuilds the history day by day."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Brand slug; every brand when left out.")
        parser.add_argument("--as-of", help="ISO-8601 moment to score as of (default: now).")
        parser.add_argument("--full", action="store_true", help="Re-score every member.")
        parser.add_argument(
            "--complete", action="store_true",
            help="With --full: also recompute favourite categories and last interactions of members whose lines and events did not change.",
        )
        parser.add_argument("--backfill-from", type=date.fromisoformat, help="First local day (YYYY-MM-DD) to rebuild.")
        parser.add_argument("--backfill-to", type=date.fromisoformat, help="Last local day to rebuild (default: today).")

    def handle(self, *args, **options):
        as_of = timezone.now()
        if options["as_of"]:
            as_of = parse_datetime(options["as_of"])
            if as_of is None:
                raise CommandError(f"--as-of {options['as_of']!r} is not an ISO-8601 date and time.")
            if timezone.is_naive(as_of):
                raise CommandError("--as-of needs a time zone offset, e.g. 2025-06-30T02:00:00+08:00.")
        tenants = Tenant.objects.order_by("pk")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No brand with slug {options['tenant']!r}.")
        for tenant in tenants:
            with tenant_context(tenant):
                if options["backfill_from"]:
                    end = options["backfill_to"] or services.local_day(tenant, as_of)
                    runs = services.backfill(
                        tenant, options["backfill_from"], end,
                        progress=lambda day, run: self.stdout.write(f"  {day}: {run.changes_total} changes"),
                    )
                    self.stdout.write(self.style.SUCCESS(f"{tenant.slug}: rebuilt {len(runs)} days."))
                    continue
                if options["full"]:
                    run = services.score_full(tenant, as_of, complete=options["complete"])
                else:
                    run = services.score_nightly(tenant, as_of)
                self.stdout.write(self.style.SUCCESS(
                    f"{tenant.slug}: {run.get_kind_display()} run as of {run.as_of.isoformat()}: "
                    f"{run.members_scored} members scored, {run.changes_total} changes "
                    f"in {run.duration_seconds:.2f} s."
                ))
