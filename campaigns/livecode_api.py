"""Live codes over the API: CRUD, and joins through a code for integrators (the third door;
the other two are WeCom's callback and the landing page). Thin: the acquisition service works."""
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from scrm.api import (
    IDEMPOTENCY_CONFLICT_RESPONSE, IDEMPOTENCY_KEY, INVALID_RESPONSE, TenantModelViewSet, error_response, idempotent,
)
from scrm.auth import CanManageSettings

from . import acquisition
from .livecode_filters import LiveCodeFilterSet, LiveCodeJoinFilterSet
from .livecode_serializers import JoinReadSerializer, JoinSerializer, LiveCodeSerializer
from .models import LiveCode, LiveCodeJoin


class JoinRefused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "refused"
    default_detail = _("The live code takes no joins now.")


def api_error(error):
    """A refusal of the acquisition service as an API error: field problems are a 400, a code that
    takes no joins now (paused, archived, not_started, ended) a 422 whose code names the reason."""
    if error.code in ("invalid", "invalid_mobile", "no_person"):
        return exceptions.ValidationError(error.errors)
    return JoinRefused(error.message, code=error.code)


class JoinAnswerSerializer(JoinReadSerializer):
    replayed = serializers.BooleanField(
        read_only=True, help_text=_("True when this person had joined through the code already: nothing was done again.")
    )

    class Meta(JoinReadSerializer.Meta):
        fields = [*JoinReadSerializer.Meta.fields, "replayed"]
        read_only_fields = fields


JOIN_EXAMPLE = {"mobile": "13800138000", "name": "王芳"}
JOIN_ANSWER = {
    "id": 812, "live_code_id": 5, "member_id": 10231, "guide_id": 12, "guide_name": "张伟", "store_id": 3,
    "door": "api", "new_member": True, "guide_changed": False, "coupon_code": "7KQ4-M2XW-9PDA",
    "joined_at": "2026-03-02T10:00:00+08:00", "replayed": False,
}
JOIN_FILTERS = [
    OpenApiParameter("door", enum=LiveCodeJoin.Door.values),
    OpenApiParameter("new_member", OpenApiTypes.BOOL),
    OpenApiParameter("guide_id", OpenApiTypes.INT),
    OpenApiParameter("store_id", OpenApiTypes.INT),
    OpenApiParameter("member_id", OpenApiTypes.INT),
    OpenApiParameter("joined_after", OpenApiTypes.DATETIME),
    OpenApiParameter("joined_before", OpenApiTypes.DATETIME),
]
REFUSED_RESPONSE = error_response(
    _("The live code is paused, archived, or outside its active window."), 422, "paused",
    "This live code is paused.",
)


def _service_data(validated):
    data = dict(validated)
    if "pool_guides" in data:
        data["pool"] = data.pop("pool_guides")
    return data


@extend_schema_view(
    create=extend_schema(responses={201: LiveCodeSerializer, 400: INVALID_RESPONSE}),
    update=extend_schema(responses={200: LiveCodeSerializer, 400: INVALID_RESPONSE}),
    partial_update=extend_schema(responses={200: LiveCodeSerializer, 400: INVALID_RESPONSE}),
)
class LiveCodeViewSet(TenantModelViewSet):
    """Channel live codes (渠道活码). The printed code and its public URL never change; the guides
    behind it (``pool``, in round-robin order), the rule, caps and hours can. Owners, operators and
    API keys change them; pause or archive with ``status`` (codes are never deleted). Archiving
    deletes the code's WeCom contact way (retried every few minutes while WeCom fails; the config
    id stays until then); making an archived code active or paused again makes a new one."""

    serializer_class = LiveCodeSerializer
    filterset_class = LiveCodeFilterSet
    permission_classes = [CanManageSettings]
    queryset = LiveCode.objects.unscoped().none()

    def get_queryset(self):
        return LiveCode.objects.prefetch_related("pool__guide", "tags").order_by("-created_at", "-pk")

    def _save(self, serializer, instance):
        try:
            return acquisition.save_live_code(
                self.tenant, _service_data(serializer.validated_data), live_code=instance, by=self.staff,
                as_of=timezone.now(),
            )
        except acquisition.AcquisitionError as exc:
            raise exceptions.ValidationError(exc.errors) from None

    def perform_create(self, serializer):
        serializer.instance = self._save(serializer, None)

    def perform_update(self, serializer):
        serializer.instance = self._save(serializer, serializer.instance)

    def _code(self):
        # Not get_object(): the list filters (guide_id, store_id …) are about joins here, not codes.
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    @extend_schema(responses=JoinReadSerializer(many=True), parameters=JOIN_FILTERS)
    @action(detail=True, methods=["get"])
    def joins(self, request, pk=None):
        """Joins through this code, newest first."""
        code = self._code()
        joins = LiveCodeJoin.objects.filter(live_code=code).select_related("guide", "coupon").order_by("-joined_at", "-pk")
        joins = LiveCodeJoinFilterSet(request.query_params, queryset=joins, request=request)
        if not joins.is_valid():
            raise exceptions.ValidationError(joins.errors)
        page = self.paginate_queryset(joins.qs)
        return self.get_paginated_response(JoinReadSerializer(page, many=True).data)

    @extend_schema(
        request=JoinSerializer, parameters=[IDEMPOTENCY_KEY],
        responses={201: JoinAnswerSerializer, 200: JoinAnswerSerializer, 400: INVALID_RESPONSE,
                   422: REFUSED_RESPONSE},
        examples=[OpenApiExample("A join", value=JOIN_EXAMPLE, request_only=True),
                  OpenApiExample("The join", value=JOIN_ANSWER, response_only=True)],
    )
    @joins.mapping.post
    @idempotent
    def join(self, request, pk=None):
        """Join a person through the code: the member is found by mobile or WeCom external user id, or
        created; the guide is assigned by the code's rule; tags, welcome coupon and message follow.
        Answers 201 with the join, or 200 with ``replayed`` true when this person had joined through
        the code before (nothing is done twice). A 422 says why a code takes no joins now."""
        code = self._code()
        data = JoinSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        mobile, external = values.get("mobile") or None, values.get("wecom_external_userid") or None
        who = f"m:{mobile}" if mobile else f"wx:{external}"
        try:
            result = acquisition.join(
                code, door=LiveCodeJoin.Door.API, key=f"api:{code.pk}:{who}", mobile=mobile,
                wecom_external_userid=external, name=values.get("name", ""), as_of=timezone.now(),
            )
        except acquisition.AcquisitionError as exc:
            raise api_error(exc) from None
        body = {**JoinReadSerializer(result.join).data, "replayed": result.replayed}
        return Response(body, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


def register(router):
    router.register("live-codes", LiveCodeViewSet, basename="livecode")
