from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from scrm.models import Tenant
from scrm.services import create_tenant


class Command(BaseCommand):
    help = "Create a brand (tenant) with an owner login and one API key; prints 'API key: <key>' last."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="username of the owner login")
        parser.add_argument("--password", required=True)
        parser.add_argument("--time-zone", default="Asia/Shanghai")
        parser.add_argument("--language", default="zh-hans", choices=["zh-hans", "en"])

    def handle(self, *args, **opts):
        slug = opts["slug"]
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with slug {slug!r} already exists.")
        if get_user_model().objects.filter(username=opts["owner"]).exists():
            raise CommandError(f"The username {opts['owner']!r} is taken.")
        tenant, owner, secret = create_tenant(
            slug, opts["name"], opts["owner"], opts["password"], time_zone=opts["time_zone"], language=opts["language"]
        )
        self.stdout.write(f"Tenant {tenant.slug} ({tenant.name}) created with owner {owner.username}.")
        self.stdout.write(f"API key: {secret}")
