from . import api_points
from .api import EventViewSet, MemberViewSet, OrderViewSet


def register(router):
    router.register("members", MemberViewSet, basename="member")
    router.register("orders", OrderViewSet, basename="order")
    router.register("events", EventViewSet, basename="event")
    api_points.register(router)
