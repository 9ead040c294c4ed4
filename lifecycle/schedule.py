"""Beat entries of lifecycle, merged into the Celery beat schedule by scrm.celery.

Each brand's nightly run starts at 02:00 in its own time zone: a dispatcher checks every quarter
hour which brands have passed that moment and claims their run once."""
from datetime import timedelta

NIGHTLY_DISPATCH_EVERY = timedelta(minutes=15)

BEAT_SCHEDULE = {
    "lifecycle-nightly-runs": {
        "task": "lifecycle.tasks.dispatch_nightly_runs",
        "schedule": NIGHTLY_DISPATCH_EVERY,
        "options": {"queue": "scoring"},
    },
}
