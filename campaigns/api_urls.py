from .api import CampaignViewSet, GuideTaskViewSet, MessageViewSet


def register(router):
    router.register("campaigns", CampaignViewSet, basename="campaign")
    router.register("guide-tasks", GuideTaskViewSet, basename="guidetask")
    router.register("messages", MessageViewSet, basename="message")
