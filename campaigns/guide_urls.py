"""/guide/: the guide's task list on a phone."""
from django.urls import path

from . import views

app_name = "guide"
urlpatterns = [
    path("", views.guide_today, name="today"),
    path("tasks/<int:pk>/outcome/", views.task_outcome, name="outcome"),
    path("tasks/<int:pk>/snooze/", views.task_snooze, name="snooze"),
]
