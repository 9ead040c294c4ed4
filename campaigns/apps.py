from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from . import receivers  # noqa: F401  (connects to lifecycle's run_finished)
        from .wecom import tasks  # noqa: F401  (Celery finds only campaigns.tasks by itself)
