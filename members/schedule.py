"""Beat entries of members, merged into the Celery beat schedule by scrm.celery."""
from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Hourly: each brand's nightly points and tier work starts at 03:00 in its own time zone.
    "points-nightly": {"task": "members.points_tasks.dispatch_points_nightly", "schedule": crontab(minute=5)},
}
