from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = _("Coupons")

    def ready(self):
        from . import receivers  # noqa: F401  (connects to members' signals)
