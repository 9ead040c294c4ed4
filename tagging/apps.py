from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = _("Tagging")

    def ready(self):
        from lifecycle.signals import run_finished
        from members.signals import demo_seeded

        from . import receivers

        run_finished.connect(receivers.refresh_after_lifecycle_run, dispatch_uid="tagging.refresh.lifecycle")
        demo_seeded.connect(receivers.install_demo_content, dispatch_uid="tagging.demo")
