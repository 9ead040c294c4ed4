from . import acquisition_api, livecode_api, report_api, survey_api
from .api import CampaignViewSet, GuideTaskViewSet, MessageViewSet


def register(router):
    router.register("campaigns", CampaignViewSet, basename="campaign")
    router.register("guide-tasks", GuideTaskViewSet, basename="guidetask")
    router.register("messages", MessageViewSet, basename="message")
    livecode_api.register(router)
    survey_api.register(router)
    report_api.register(router)
    acquisition_api.register(router)
