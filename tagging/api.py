import csv

from django.db.models import Count
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.filters import MemberFilterSet
from members.queries import visible_members
from members.serializers import MemberSerializer
from scrm.api import CursorPagination, TenantModelViewSet, TenantViewSetMixin
from scrm.tenancy import tenant_context

from . import services
from .conditions import ConditionError, field_catalogue
from .models import MemberTag, Segment, SegmentSnapshot, Tag, TagChange, TagGroup, TagSource
from .serializers import (
    ApplyResultSerializer, ApplyTagsSerializer, CountSerializer, MemberTagAddSerializer, MemberTagSerializer,
    RulesSerializer, SegmentSerializer, SnapshotSerializer, TagChangeSerializer, TagGroupSerializer, TagSerializer,
)


class SafeJSONParser(parsers.JSONParser):
    """JSON nested deeper than Python's parser can follow is a 400, not a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("The JSON is nested too deeply.")) from None


PARSERS = [SafeJSONParser, parsers.FormParser, parsers.MultiPartParser]


def invalid(errors):
    return exceptions.ValidationError(errors)


class _Errors:
    """Service errors become 400s that name the path of what was wrong."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, (ConditionError, services.TaggingError)):
            raise invalid(exc.errors) from None
        return False


class TagGroupViewSet(TenantModelViewSet, mixins.DestroyModelMixin):
    """Tag groups (标签组). Automatic groups are kept by their tags' rules."""

    serializer_class = TagGroupSerializer
    parser_classes = PARSERS
    queryset = TagGroup.objects.unscoped().none()
    filterset_fields = ["kind"]

    def get_queryset(self):
        return TagGroup.objects.annotate(tag_count=Count("tags"))

    def perform_create(self, serializer):
        serializer.instance = services.save_tag_group(self.tenant, serializer.validated_data)

    def perform_update(self, serializer):
        services.save_tag_group(self.tenant, serializer.validated_data, serializer.instance)


class TagFilterSet(filters.FilterSet):
    group_id = filters.NumberFilter(field_name="group_id")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Tag
        fields = ["group_id", "q"]


class TagViewSet(TenantModelViewSet, mixins.DestroyModelMixin):
    """Tags. POST /tags/apply/ adds or removes tags on many members at once."""

    serializer_class = TagSerializer
    parser_classes = PARSERS
    queryset = Tag.objects.unscoped().none()
    filterset_class = TagFilterSet

    def get_queryset(self):
        return Tag.objects.select_related("group").annotate(member_count=Count("member_tags"))

    def perform_create(self, serializer):
        with _Errors():
            serializer.instance = services.save_tag(self.tenant, serializer.validated_data)

    def perform_update(self, serializer):
        with _Errors():
            services.save_tag(self.tenant, serializer.validated_data, serializer.instance)

    @extend_schema(request=ApplyTagsSerializer, responses=ApplyResultSerializer)
    @action(detail=False, methods=["post"])
    def apply(self, request):
        """Add and/or remove tags on members given by id list, segment or the members list's filter.
        Only members the caller may see are touched."""
        serializer = ApplyTagsSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        members = target_members(request, self.staff, data)
        with _Errors():
            result = services.apply_tags(
                self.tenant, members, add=data["add"], remove=data["remove"], source=TagSource.MANUAL, staff=self.staff
            )
        return Response(result)


def target_members(request, staff, data):
    """The members an apply request names, within what ``staff`` may see."""
    visible = visible_members(staff)
    if "member_ids" in data:
        return visible.filter(pk__in=data["member_ids"])
    if "segment" in data:
        with _Errors():
            return services.segment_members(data["segment"], timezone.now(), visible)
    filterset = MemberFilterSet(data=data["filter"], queryset=visible, request=request)
    if not filterset.is_valid():
        raise invalid({f"filter.{name}": errors for name, errors in filterset.errors.items()})
    return filterset.qs


class MemberTagViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """The tags one member holds: GET lists them, POST {"tag": id} adds one, DELETE …/{tag_id}/ removes it."""

    serializer_class = MemberTagSerializer
    parser_classes = PARSERS
    queryset = MemberTag.objects.unscoped().none()
    lookup_field = "tag_id"
    pagination_class = None

    def member(self):
        return get_object_or_404(visible_members(self.staff), pk=self.kwargs["member_pk"])

    def get_queryset(self):
        return MemberTag.objects.filter(member=self.member()).select_related("tag", "group", "added_by").order_by(
            "group__position", "tag__position", "tag_id"
        )

    def list(self, request, member_pk=None):
        return Response(MemberTagSerializer(self.get_queryset(), many=True).data)

    @extend_schema(request=MemberTagAddSerializer, responses=MemberTagSerializer(many=True))
    def create(self, request, member_pk=None):
        member = self.member()
        serializer = MemberTagAddSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with _Errors():
            services.apply_tags(
                self.tenant, visible_members(self.staff).filter(pk=member.pk),
                add=[serializer.validated_data["tag"].pk], staff=self.staff,
            )
        return Response(MemberTagSerializer(self.get_queryset(), many=True).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, member_pk=None, tag_id=None):
        member = self.member()
        tag = get_object_or_404(Tag, pk=tag_id)
        with _Errors():
            services.apply_tags(self.tenant, visible_members(self.staff).filter(pk=member.pk), remove=[tag.pk], staff=self.staff)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagChangeFilterSet(filters.FilterSet):
    tag_id = filters.NumberFilter(field_name="tag_id")
    member_id = filters.NumberFilter(field_name="member_id")
    action = filters.ChoiceFilter(choices=TagChange.Action.choices)
    source = filters.ChoiceFilter(choices=TagSource.choices)
    since = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")

    class Meta:
        model = TagChange
        fields = ["tag_id", "member_id", "action", "source", "since"]


class TagChangeViewSet(TenantViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every tag gained or lost: who, when and by what (manual, automatic, import, campaign)."""

    serializer_class = TagChangeSerializer
    queryset = TagChange.objects.unscoped().none()
    filterset_class = TagChangeFilterSet
    pagination_class = CursorPagination

    def get_queryset(self):
        qs = TagChange.objects.select_related("tag", "staff")
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs


class SegmentViewSet(TenantModelViewSet, mixins.DestroyModelMixin):
    """Segments (人群包): saved condition trees, evaluated when used. Counts, member lists and
    exports cover only the members the caller may see."""

    serializer_class = SegmentSerializer
    parser_classes = PARSERS
    queryset = Segment.objects.unscoped().none()

    def get_queryset(self):
        return Segment.objects.all()

    def perform_create(self, serializer):
        with _Errors():
            serializer.instance = services.save_segment(self.tenant, serializer.validated_data, staff=self.staff)

    def perform_update(self, serializer):
        with _Errors():
            services.save_segment(self.tenant, serializer.validated_data, serializer.instance)

    def perform_destroy(self, instance):
        with _Errors():
            services.delete_segment(instance)

    def visible(self):
        return None if self.staff is None or self.staff.sees_all_members else visible_members(self.staff)

    @extend_schema(responses=CountSerializer)
    @action(detail=True, methods=["get"])
    def count(self, request, pk=None):
        segment = self.get_object()
        as_of = timezone.now()
        with _Errors():
            count = services.count_segment(segment, as_of, self.visible())
        return Response({"count": count, "as_of": as_of})

    @extend_schema(request=RulesSerializer, responses=CountSerializer)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """Count the members of a tree before saving it (the builder's live count)."""
        serializer = RulesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        as_of = timezone.now()
        with _Errors():
            count = services.members_matching(
                self.tenant, serializer.validated_data["rules"], as_of, self.visible()
            ).count()
        return Response({"count": count, "as_of": as_of})

    @action(detail=False, methods=["get"])
    def fields(self, request):
        """The fields a condition may use, with their operators and choices."""
        return Response(field_catalogue())

    @extend_schema(responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def members(self, request, pk=None):
        segment = self.get_object()
        with _Errors():
            qs = services.segment_members(segment, timezone.now(), visible_members(self.staff))
        page = self.paginate_queryset(qs.select_related("home_store", "owner_guide"))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): bytes})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The segment's members as CSV, streamed."""
        segment = self.get_object()
        as_of = timezone.now()
        with _Errors():
            qs = services.segment_members(segment, as_of, visible_members(self.staff))
        return stream_members_csv(self.tenant, qs, f"segment-{segment.pk}-{as_of:%Y%m%d%H%M}.csv", self.staff)

    @extend_schema(request=None, responses=SnapshotSerializer)
    @action(detail=True, methods=["post"])
    def snapshot(self, request, pk=None):
        """Freeze the member list now; a snapshot does not change as members do."""
        segment = self.get_object()
        with _Errors():
            snap = services.take_snapshot(segment, timezone.now(), staff=self.staff)
        return Response(SnapshotSerializer(snap).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=SnapshotSerializer(many=True))
    @action(detail=True, methods=["get"])
    def snapshots(self, request, pk=None):
        segment = self.get_object()
        return Response(SnapshotSerializer(SegmentSnapshot.objects.filter(segment=segment)[:100], many=True).data)


class _Echo:
    def write(self, value):
        return value


EXPORT_COLUMNS = ["id", "external_id", "name", "mobile", "gender", "city", "store", "guide", "joined_at", "stage"]


def stream_members_csv(tenant, members, filename, staff):
    """Stream members as CSV in chunks; the rows are read inside the tenant's scope because the
    response body is produced after the request's scope has ended."""
    full_mobile = staff is None or staff.can_manage_settings
    rows = members.order_by("pk").values_list(
        "pk", "external_id", "name", "mobile", "gender", "city", "home_store__code", "owner_guide__name",
        "joined_at", "lifecycle__stage",
    )
    zone = tenant.zone

    def generate():
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)
        with tenant_context(tenant):
            for row in rows.iterator(chunk_size=2000):
                row = list(row)
                if row[3] and not full_mobile:
                    row[3] = f"{row[3][:3]}****{row[3][-4:]}"
                row[8] = row[8].astimezone(zone).isoformat(timespec="seconds")
                yield writer.writerow(["" if v is None else v for v in row])

    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

