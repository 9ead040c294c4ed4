from members.models import ImportJob

from .import_members import Command as ImportCommand


class Command(ImportCommand):
    help = (
        "Import orders from a CSV file, one row per order line; the rows of one order are consecutive. "
        "Run it again on the same file, or with --resume JOB_ID, to carry on after a crash."
    )
    kind = ImportJob.Kind.ORDERS
