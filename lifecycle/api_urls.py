from .api import LifecycleRunViewSet, LifecycleViewSet, MemberStageViewSet


def register(router):
    router.register("lifecycle/runs", LifecycleRunViewSet, basename="lifecycle-run")
    router.register("lifecycle", LifecycleViewSet, basename="lifecycle")
    # /members/{id}/stage/: beside the members endpoints, answered here because lifecycle owns stages.
    router.register(r"members/(?P<member_pk>\d+)", MemberStageViewSet, basename="member-stage")
