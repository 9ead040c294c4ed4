from django.urls import path

from . import livecode_views as views

urlpatterns = [
    path("live-codes/", views.live_code_list, name="live_codes"),
    path("live-codes/new/", views.live_code_edit, name="live_code_new"),
    path("live-codes/<int:pk>/", views.live_code_detail, name="live_code_detail"),
    path("live-codes/<int:pk>/edit/", views.live_code_edit, name="live_code_edit"),
    path("live-codes/<int:pk>/status/", views.live_code_status, name="live_code_status"),
    path("live-codes/<int:pk>/qr/", views.live_code_qr, name="live_code_qr"),
    path("live-codes/<int:pk>/print/", views.live_code_print, name="live_code_print"),
]
