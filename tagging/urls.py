from django.urls import path

from . import views

app_name = "tagging"
urlpatterns = [
    path("", views.segment_list, name="index"),
    path("segments/", views.segment_list, name="segments"),
    path("segments/new/", views.segment_edit, name="segment_new"),
    path("segments/preview/", views.segment_preview, name="segment_preview"),
    path("segments/<int:pk>/", views.segment_detail, name="segment"),
    path("segments/<int:pk>/edit/", views.segment_edit, name="segment_edit"),
    path("segments/<int:pk>/count/", views.segment_count, name="segment_count"),
    path("segments/<int:pk>/export/", views.segment_export, name="segment_export"),
    path("segments/<int:pk>/snapshot/", views.segment_snapshot, name="segment_snapshot"),
    path("segments/<int:pk>/delete/", views.segment_delete, name="segment_delete"),
    path("segments/<int:pk>/coupons/", views.segment_coupons, name="segment_coupons"),
    path("segments/<int:pk>/coupons/<str:run>/", views.segment_coupon_run, name="segment_coupon_run"),
    path("tags/", views.tag_groups, name="tags"),
    path("tags/new/", views.tag_group_edit, name="tag_group_new"),
    path("tags/<int:pk>/", views.tag_group_detail, name="tag_group"),
    path("tags/<int:pk>/edit/", views.tag_group_edit, name="tag_group_edit"),
    path("tags/<int:pk>/refresh/", views.tag_group_refresh, name="tag_group_refresh"),
    path("tags/<int:group_pk>/tags/new/", views.tag_edit, name="tag_new"),
    path("tags/<int:group_pk>/tags/<int:pk>/edit/", views.tag_edit, name="tag_edit"),
    path("bulk/", views.bulk_tag, name="bulk"),
    path("members/<int:member_pk>/tags/", views.member_tags, name="member_tags"),
]
