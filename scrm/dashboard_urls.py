from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="auth/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="dashboard"),
    path("settings/stores/", views.store_list, name="settings_stores"),
    path("settings/stores/new/", views.store_edit, name="settings_store_create"),
    path("settings/stores/<int:pk>/", views.store_edit, name="settings_store_edit"),
    path("settings/staff/", views.staff_list, name="settings_staff"),
    path("settings/staff/new/", views.staff_edit, name="settings_staff_create"),
    path("settings/staff/<int:pk>/", views.staff_edit, name="settings_staff_edit"),
    path("settings/api-keys/", views.api_key_list, name="settings_api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="settings_api_key_revoke"),
]
