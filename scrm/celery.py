import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")

app = Celery("scrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {
    "members.tasks.*": {"queue": "ingest"},
    "lifecycle.tasks.*": {"queue": "scoring"},
    "tagging.tasks.*": {"queue": "scoring"},
    "campaigns.tasks.*": {"queue": "outreach"},
    "coupons.tasks.*": {"queue": "outreach"},
}
app.autodiscover_tasks()
