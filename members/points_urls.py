from django.urls import path

from . import points_views

# Part of the "members" namespace: members/urls.py appends these.
urlpatterns = [
    path("points/settings/", points_views.points_settings, name="points_settings"),
    path("points/tiers/new/", points_views.tier_edit, name="tier_new"),
    path("points/tiers/<int:pk>/", points_views.tier_edit, name="tier_edit"),
    path("points/member-days/new/", points_views.member_day_edit, name="member_day_new"),
    path("points/member-days/<int:pk>/", points_views.member_day_edit, name="member_day_edit"),
    path("<int:pk>/points/", points_views.member_points, name="points"),
]
