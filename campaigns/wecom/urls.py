from django.urls import path

from . import views

app_name = "wecom"
urlpatterns = [
    # Two segments, so that no brand slug can shadow it.
    path("settings/sync-tags/", views.sync_tags, name="sync_tags"),
    path("<slug:slug>/", views.callback, name="callback"),
]
