from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from scrm.models import Tenant

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = (
        "For `make run`: on an empty database, seed the demo brand and print its logins and API key; "
        "otherwise print the demo brand's logins, if it exists, and seed nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=3000, help="Members of the demo brand (default %(default)s).")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the product will be served.")

    def handle(self, *args, members, url, **options):
        # The demo lives in the members app, above this one: reach it through its command.
        if not Tenant.objects.exists():
            self.stdout.write(_("The database is empty: loading the demo brand with %(count)s members…") % {"count": members})
            call_command("seed_demo", tenant=DEMO_SLUG, members=members, stdout=self.stdout, stderr=self.stderr)
        elif Tenant.objects.filter(slug=DEMO_SLUG).exists():
            call_command("seed_demo", tenant=DEMO_SLUG, logins_only=True, stdout=self.stdout, stderr=self.stderr)
        else:
            self.stdout.write(_("The database already has brands; no demo brand loaded."))
            return
        self.stdout.write(_("Open %(url)s and sign in with a demo login.") % {"url": url})
