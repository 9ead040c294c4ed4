from django.urls import include, path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="index"),
    path("new/", views.campaign_edit, name="new"),
    path("audience-count/", views.audience_count, name="audience_count"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/status/", views.campaign_status, name="status"),
    path("tasks/", views.store_tasks, name="tasks"),
    path("tasks/handover/", views.handover, name="handover"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/retry/", views.message_retry, name="message_retry"),
    path("settings/", views.outreach_settings, name="settings"),
    path("", include("campaigns.livecode_urls")),
    path("", include("campaigns.survey_urls")),
    path("", include("campaigns.report_urls")),
    path("", include("campaigns.acquisition_urls")),
]
