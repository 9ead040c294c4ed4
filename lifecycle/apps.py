from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

def _with_stage(queryset):
    return queryset.select_related("lifecycle")


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = _("Lifecycle")

    def ready(self):
        from members import views as member_views
        from members.signals import activity_recorded, demo_seeded, members_changed

        from . import receivers

        activity_recorded.connect(receivers.rescore_members, dispatch_uid="lifecycle.rescore.activity")
        members_changed.connect(receivers.rescore_members, dispatch_uid="lifecycle.rescore.members")
        # Before the apps above (tags, campaigns) add their demo content, which reads the stages.
        demo_seeded.connect(receivers.install_demo_history, dispatch_uid="lifecycle.demo_history")
        # The member list shows each member's stage (templates/lifecycle/_member_list_cell.html).
        if _with_stage not in member_views.LIST_QUERYSET_HOOKS:
            member_views.LIST_QUERYSET_HOOKS.append(_with_stage)
