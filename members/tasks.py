from celery import shared_task

from scrm.tenancy import tenant_context

from . import importing
from .models import ImportJob


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_import(tenant_id, job_id):
    """Import a CSV file; a redelivered task resumes after the rows already committed."""
    with tenant_context(tenant_id):
        job = ImportJob.objects.filter(pk=job_id).select_related("tenant").first()
        if job is not None:
            importing.run_import(job)
