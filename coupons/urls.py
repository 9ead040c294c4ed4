from django.urls import path

from . import views

app_name = "coupons"
urlpatterns = [
    path("", views.template_list, name="index"),
    path("templates/", views.template_list, name="templates"),
    path("templates/new/", views.template_edit, name="template_new"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/issue/", views.issue, name="issue"),
    path("search/", views.coupon_search, name="search"),
    path("redeem/", views.redeem, name="redeem"),
    path("results/", views.results, name="results"),
]
