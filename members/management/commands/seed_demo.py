import datetime
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from members.demo import DEFAULT_SLUG, DemoError, demo_logins, seed_demo
from scrm.models import Tenant


def as_of_value(raw):
    """An ISO date (the start of that day in the brand's time zone) or an ISO datetime with offset."""
    try:
        if "T" in raw or " " in raw:
            return datetime.datetime.fromisoformat(raw)
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(raw) from None


class Command(BaseCommand):
    help = (
        "Seed a demo fast-fashion brand: ten stores with their managers and guides, and members with "
        "orders, order lines, refunds and interactions that tell every lifecycle story. The same --seed and "
        "--as-of give the same data. Creates the brand if --tenant names none; an existing brand without "
        "stores gets the demo stores, one with stores keeps its own. A brand that already has demo members "
        "is refused unless --force-add, which adds the new members after them. Large batches on PostgreSQL "
        "drop and rebuild the member, order, line and event tables' indexes and foreign keys around the load "
        "(--bulk-load auto), which locks those tables meanwhile."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=DEFAULT_SLUG, help="The brand's slug (default %(default)s).")
        parser.add_argument("--name", default=None, help="The brand's name when it is created.")
        parser.add_argument("--members", type=int, default=3000, help="How many members (default %(default)s).")
        parser.add_argument("--seed", type=int, default=1, help="The random seed (default %(default)s).")
        parser.add_argument(
            "--as-of", type=as_of_value, default=None,
            help="The moment the data ends: an ISO date (start of that day in the brand's zone) or datetime; default now.",
        )
        parser.add_argument("--force-add", action="store_true", help="Add members to a brand that already has demo members.")
        parser.add_argument(
            "--bulk-load", choices=["auto", "always", "never"], default="auto",
            help="PostgreSQL: rebuild indexes and foreign keys after the load instead of maintaining them row by row "
                 "(auto: for 100,000 members or more when the batch at least doubles the orders table).",
        )
        parser.add_argument(
            "--no-signals", action="store_true",
            help="Do not announce the new members to the rest of the product (scoring, points) after the load.",
        )
        parser.add_argument("--logins-only", action="store_true", help="Only print the demo logins of the brand.")

    def handle(self, *args, **options):
        slug = options["tenant"]
        if options["logins_only"]:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                raise CommandError(_("No brand with the slug %(slug)s.") % {"slug": slug})
            self._print_logins(demo_logins(tenant))
            return
        verbose = options["verbosity"] >= 2
        started = time.perf_counter()
        kwargs = {}
        if options["name"]:
            kwargs["name"] = options["name"]
        try:
            result = seed_demo(
                as_of=options["as_of"] or timezone.now(), slug=slug, members=options["members"], seed=options["seed"],
                force_add=options["force_add"], send_signals=not options["no_signals"],
                bulk_load={"auto": None, "always": True, "never": False}[options["bulk_load"]],
                log=(lambda message: self.stdout.write(f"  {message}")) if verbose else None, **kwargs,
            )
        except DemoError as exc:
            raise CommandError(str(exc)) from None
        counts = result.counts
        self.stdout.write(
            _(
                "Seeded %(brand)s (%(slug)s): %(members)s members, %(orders)s orders, %(lines)s order lines, "
                "%(events)s events in %(seconds).1fs."
            ) % {
                "brand": result.tenant.name, "slug": result.tenant.slug, "members": f"{counts['members']:,}",
                "orders": f"{counts['orders']:,}", "lines": f"{counts['order_lines']:,}",
                "events": f"{counts['events']:,}", "seconds": time.perf_counter() - started,
            }
        )
        self._print_logins(result.logins)
        if result.api_key:
            self.stdout.write(_("API key (shown only this once): %(key)s") % {"key": result.api_key})

    def _print_logins(self, logins):
        if not logins:
            return
        self.stdout.write(_("Demo logins (username / password):"))
        width = max(len(login.username) for login in logins)
        for login in logins:
            self.stdout.write(f"  {login.username:<{width}}  {login.password}  ({login.role})")
