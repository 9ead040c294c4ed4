"""Beat entries of coupons, merged into the Celery beat schedule by scrm.celery."""
from celery.schedules import crontab

BEAT_SCHEDULE = {
    "coupons-expire": {
        "task": "coupons.tasks.expire_coupons_everywhere",
        # Redemption checks the end itself; this keeps statuses and the results page current.
        "schedule": crontab(minute="*/10"),
    },
}
