"""Beat entries of campaigns, merged into the Celery beat schedule by scrm.celery."""
from celery.schedules import crontab

BEAT_SCHEDULE = {
    "campaigns-tick": {
        "task": "campaigns.tasks.tick",
        # Daily enrolments are claimed once per brand and local day; steps and deliveries run each tick.
        "schedule": crontab(minute="*/5"),
    },
}
