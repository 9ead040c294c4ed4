"""Beat entries of campaigns, merged into the Celery beat schedule by scrm.celery."""
from celery.schedules import crontab

BEAT_SCHEDULE = {
    "campaigns-tick": {
        "task": "campaigns.tasks.tick",
        # Daily enrolments are claimed once per brand and local day; steps and deliveries run each tick.
        "schedule": crontab(minute="*/5"),
    },
    "campaigns-wecom-contact-way-removals": {
        "task": "campaigns.wecom.tasks.retry_contact_way_removals_all",
        # Archived codes whose WeCom contact way WeCom failed to delete when they were archived.
        "schedule": crontab(minute="*/10"),
    },
    "campaigns-churn-alerts": {
        "task": "campaigns.tasks.check_churn_alerts",
        # Early morning in China (01:10 UTC): the previous local day is complete in every brand's zone there.
        "schedule": crontab(hour=1, minute=10),
    },
}
