from .api import MemberTagViewSet, SegmentViewSet, TagChangeViewSet, TagGroupViewSet, TagViewSet


def register(router):
    router.register("tag-groups", TagGroupViewSet, basename="taggroup")
    router.register("tags", TagViewSet, basename="tag")
    router.register("tag-changes", TagChangeViewSet, basename="tagchange")
    router.register(r"members/(?P<member_pk>\d+)/tags", MemberTagViewSet, basename="membertag")
    router.register("segments", SegmentViewSet, basename="segment")
