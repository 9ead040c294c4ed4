from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import health
from .views_api import ApiKeyViewSet, StaffViewSet, StoreViewSet

router = DefaultRouter()
router.register("stores", StoreViewSet, basename="store")
router.register("staff", StaffViewSet, basename="staff")
router.register("api-keys", ApiKeyViewSet, basename="apikey")

# Each app registers its API endpoints on the one router and has its own dashboard urls.
APPS = ["members", "lifecycle", "coupons", "tagging", "campaigns"]
for app in APPS:
    __import__(f"{app}.api_urls", fromlist=["register"]).register(router)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("scrm.dashboard_urls")),
    path("members/", include("members.urls")),
    path("lifecycle/", include("lifecycle.urls")),
    path("tagging/", include("tagging.urls")),
    path("coupons/", include("coupons.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("guide/", include("campaigns.guide_urls")),
    path("hooks/wecom/", include("campaigns.wecom.urls")),
    path("j/", include("campaigns.landing_urls")),
    path("s/", include("campaigns.survey_public_urls")),
    path("imports/", include("members.import_urls")),
]

handler404 = "scrm.exceptions.not_found"
handler500 = "scrm.exceptions.server_error"
