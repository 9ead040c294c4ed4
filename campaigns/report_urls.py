from django.urls import path

from . import report_views

urlpatterns = [
    path("performance/", report_views.performance, name="performance"),
    path("<int:pk>/over-time/", report_views.campaign_over_time, name="over_time"),
]
