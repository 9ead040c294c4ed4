from django.urls import path

from . import points_urls, views

app_name = "members"
urlpatterns = [
    path("", views.member_list, name="list"),
    path("<int:pk>/", views.member_detail, name="detail"),
    path("<int:pk>/orders/", views.member_orders, name="orders"),
    path("<int:pk>/events/", views.member_events, name="events"),
]
urlpatterns += points_urls.urlpatterns
