from django.urls import path

from . import landing_views as views

app_name = "landing"
urlpatterns = [
    path("<str:code>/", views.join, name="join"),
    path("<str:code>/welcome/", views.welcome, name="welcome"),
]
