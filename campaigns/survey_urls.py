from django.urls import path

from . import survey_views

urlpatterns = [
    path("surveys/", survey_views.survey_list, name="surveys"),
    path("surveys/new/", survey_views.survey_edit, name="survey_new"),
    path("surveys/<int:pk>/", survey_views.survey_results, name="survey_results"),
    path("surveys/<int:pk>/edit/", survey_views.survey_edit, name="survey_edit"),
    path("surveys/<int:pk>/answers.csv", survey_views.survey_export, name="survey_export"),
    path("surveys/<int:pk>/preview/", survey_views.survey_preview, name="survey_preview"),
]
