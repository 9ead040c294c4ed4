import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")

app = Celery("scrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {
    # Issuing coupons is outreach work, whichever app starts it.
    "tagging.tasks.issue_segment_coupons": {"queue": "outreach"},
    "members.tasks.*": {"queue": "ingest"},
    "members.points_tasks.*": {"queue": "scoring"},
    "lifecycle.tasks.*": {"queue": "scoring"},
    "tagging.tasks.*": {"queue": "scoring"},
    "campaigns.tasks.*": {"queue": "outreach"},
    "coupons.tasks.*": {"queue": "outreach"},
}
app.autodiscover_tasks()

# Each app keeps its beat entries in <app>/schedule.py (plain data, no models imported).
SCHEDULE_MODULES = ["members.schedule", "lifecycle.schedule", "coupons.schedule", "campaigns.schedule"]
app.conf.beat_schedule = {
    name: entry
    for module in SCHEDULE_MODULES
    for name, entry in __import__(module, fromlist=["BEAT_SCHEDULE"]).BEAT_SCHEDULE.items()
}
