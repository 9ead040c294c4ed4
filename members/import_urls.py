from django.urls import path

from . import views_import

app_name = "imports"
urlpatterns = [
    path("", views_import.import_list, name="list"),
    path("sample/<str:kind>.csv", views_import.import_sample, name="sample"),
    path("<int:pk>/", views_import.import_detail, name="detail"),
    path("<int:pk>/errors.csv", views_import.import_errors_csv, name="errors_csv"),
    path("<int:pk>/resume/", views_import.import_resume, name="resume"),
]
