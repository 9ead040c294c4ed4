from django.urls import path

from . import acquisition_views as views

urlpatterns = [
    path("acquisition/", views.acquisition, name="acquisition"),
    path("acquisition/live-codes/<int:pk>/", views.live_code_results, name="acquisition_live_code"),
    path("churn-alerts/", views.churn_alerts, name="churn_alerts"),
    path("churn-alerts/hand-to-campaign/", views.hand_to_campaign, name="churn_alerts_hand"),
    path("churn-alerts/mass-losses/<int:pk>/acknowledge/", views.acknowledge_alert, name="churn_alert_acknowledge"),
]
