"""Dashboard pages of CSV imports: upload, progress, result and the per-row error report."""
import csv
from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from . import importing, tasks
from .models import ImportJob

JOBS_PER_PAGE = 25
SHOWN_ERRORS = 200
POLL_SECONDS = 2
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def importer_required(view):
    """Owners and operators import; everybody else is refused."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        staff = getattr(request, "staff", None)
        if staff is None or not staff.can_manage_settings:
            raise PermissionDenied(_("Only owners and operators may import data."))
        return view(request, *args, **kwargs)

    return wrapped


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What to import"), choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "UTF-8 (with or without BOM, as Excel saves \"CSV UTF-8\") or GBK; the first row names the columns."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


@importer_required
@require_http_methods(["GET", "POST"])
def import_list(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        path, sha256 = importing.store_upload(request.tenant, upload)
        job, _resumed = importing.open_import(
            request.tenant, form.cleaned_data["kind"], path, upload.name, sha256, created_by=request.staff
        )
        tasks.run_import.delay(request.tenant.pk, job.pk)
        return redirect("imports:detail", pk=job.pk)
    jobs = ImportJob.objects.defer("errors").select_related("created_by")
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "members/import_list.html", {
        "form": form, "page": page, "jobs": page.object_list, "kinds": ImportJob.Kind.choices,
        "member_columns": importing.MEMBER_COLUMNS, "order_columns": importing.COLUMNS[ImportJob.Kind.ORDERS],
    })


def _running(job):
    return job.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING)


@importer_required
def import_detail(request, pk):
    if request.headers.get("HX-Request"):
        job = get_object_or_404(ImportJob.objects.defer("errors"), pk=pk)
        response = render(request, "members/import_progress.html", {
            "job": job, "running": _running(job), "poll_seconds": POLL_SECONDS,
        })
        if not _running(job):
            # Finished while the page was polling: reload it whole to show the result and the report.
            response["HX-Refresh"] = "true"
        return response
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    errors = [dict(entry, text=importing.format_error(entry)) for entry in job.errors[:SHOWN_ERRORS]]
    return render(request, "members/import_detail.html", {
        "job": job, "errors": errors, "shown_errors": len(errors), "stored_errors": len(job.errors),
        "running": _running(job), "poll_seconds": POLL_SECONDS,
    })


@importer_required
@require_POST
def import_resume(request, pk):
    job = get_object_or_404(ImportJob.objects.defer("errors"), pk=pk)
    if job.status != ImportJob.Status.DONE:
        tasks.run_import.delay(request.tenant.pk, job.pk)
    return redirect("imports:detail", pk=job.pk)


def _cell(value):
    """Keep a spreadsheet from running a cell as a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_response(filename):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")  # Excel reads UTF-8 only with the BOM
    return response


@importer_required
def import_errors_csv(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    response = _csv_response(f"import-{job.pk}-errors.csv")
    writer = csv.writer(response)
    writer.writerow([_("row"), _("column"), _("message"), _("external id")])
    for entry in job.errors:
        writer.writerow([entry["line"], _cell(entry["field"]), _cell(entry["message"]), _cell(entry["external_id"])])
    return response


@importer_required
def import_sample(request, kind):
    if kind not in ImportJob.Kind.values:
        raise Http404()
    response = _csv_response(f"{kind}.csv")
    csv.writer(response).writerow(importing.template_columns(kind))
    return response
