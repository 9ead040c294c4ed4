from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from members import importing
from members.models import ImportJob
from scrm.models import Tenant
from scrm.tenancy import tenant_context

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = (
        "Import members from a CSV file (UTF-8 with or without BOM, or GBK), in batches. Run it again on "
        "the same file, or with --resume JOB_ID, to carry on after a crash."
    )
    kind = ImportJob.Kind.MEMBERS

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="The CSV file; may be left out with --resume.")
        parser.add_argument("--tenant", required=True, help="The brand's slug.")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Rows per transaction (default: IMPORT_BATCH_SIZE)."
        )
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="Carry on with this import job.")

    def handle(self, *args, file=None, tenant=None, batch_size=None, resume=None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        brand = Tenant.objects.filter(slug=tenant).first()
        if brand is None:
            raise CommandError(_("No brand with the slug %(slug)s.") % {"slug": tenant})
        with tenant_context(brand):
            job = self._job(brand, file, resume)
            if job.status == ImportJob.Status.DONE:
                self.stdout.write(_("Import #%(id)d is already done.") % {"id": job.pk})
            else:
                job = self._run(job, batch_size)
        self._summary(job)
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(job.message)

    def _job(self, brand, file, resume):
        if resume is not None:
            job = ImportJob.objects.filter(pk=resume, kind=self.kind).select_related("tenant").first()
            if job is None:
                raise CommandError(_("No %(kind)s import #%(id)d in this brand.") % {"kind": self.kind, "id": resume})
            if file and str(Path(file).resolve()) != job.file_path:
                ImportJob.objects.filter(pk=job.pk).update(file_path=str(Path(file).resolve()))
                job.file_path = str(Path(file).resolve())
            return job
        if not file:
            raise CommandError(_("Give the CSV file, or --resume JOB_ID."))
        path = Path(file).resolve()
        try:
            sha256, _encoding = importing.fingerprint(path)
        except importing.ImportFileError as exc:
            raise CommandError(str(exc)) from None
        job, resumed = importing.open_import(brand, self.kind, path, path.name, sha256)
        if resumed and job.status != ImportJob.Status.DONE:
            self.stderr.write(
                _("Resuming import #%(id)d after row %(rows)d.") % {"id": job.pk, "rows": job.rows_done}
            )
        return ImportJob.objects.select_related("tenant").get(pk=job.pk)

    def _run(self, job, batch_size):
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(total=job.total_rows, initial=job.rows_done, unit=_("rows"), file=stream, dynamic_ncols=True) as bar:
            def show(current):
                bar.total = current.total_rows
                bar.n = current.rows_done
                bar.refresh()

            return importing.run_import(job, batch_size=batch_size, on_progress=show)

    def _summary(self, job):
        self.stdout.write(
            _("Import #%(id)d (%(file)s): %(status)s. %(rows)d rows read; %(created)d created, %(updated)d updated, "
              "%(unchanged)d unchanged, %(errors)d rejected.") % {
                "id": job.pk, "file": job.file_name, "status": job.get_status_display(), "rows": job.rows_done,
                "created": job.created_count, "updated": job.updated_count, "unchanged": job.unchanged_count,
                "errors": job.error_count,
            }
        )
        for entry in job.errors[:SHOWN_ERRORS]:
            self.stdout.write("  " + importing.format_error(entry))
        if job.error_count and len(job.errors) > SHOWN_ERRORS:
            self.stdout.write("  " + _("… the full error report is on the import's page in the dashboard."))
        if job.message and job.status != ImportJob.Status.FAILED:
            self.stdout.write(job.message)
        if job.status == ImportJob.Status.RUNNING:
            self.stdout.write(_("Another run of this import moved on first; run the command again to carry on."))
