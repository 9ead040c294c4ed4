from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

NIGHTLY_DISPATCH_EVERY = timedelta(minutes=15)


def _with_stage(queryset):
    return queryset.select_related("lifecycle")


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = _("Lifecycle")

    def ready(self):
        from members import views as member_views
        from members.signals import activity_recorded, members_changed
        from scrm.celery import app

        from . import receivers

        activity_recorded.connect(receivers.rescore_members, dispatch_uid="lifecycle.rescore.activity")
        members_changed.connect(receivers.rescore_members, dispatch_uid="lifecycle.rescore.members")
        # The member list shows each member's stage (templates/lifecycle/_member_list_cell.html).
        if _with_stage not in member_views.LIST_QUERYSET_HOOKS:
            member_views.LIST_QUERYSET_HOOKS.append(_with_stage)
        # Each brand's nightly run starts at 02:00 in its own time zone: a dispatcher checks every
        # quarter hour which brands have passed that moment and claims their run once.
        app.conf.beat_schedule = {
            **(app.conf.beat_schedule or {}),
            "lifecycle-nightly-runs": {
                "task": "lifecycle.tasks.dispatch_nightly_runs",
                "schedule": NIGHTLY_DISPATCH_EVERY,
                "options": {"queue": "scoring"},
            },
        }
