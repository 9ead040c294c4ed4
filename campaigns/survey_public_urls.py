from django.urls import path

from . import survey_views

app_name = "survey_public"
urlpatterns = [
    path("<str:token>/", survey_views.answer, name="answer"),
]
