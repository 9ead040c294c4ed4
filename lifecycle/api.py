from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.queries import visible_members
from scrm.api import TenantViewSetMixin
from scrm.auth import CanManageSettings

from . import queries, services
from .models import LifecycleRun, MemberLifecycle, StageRulesVersion
from .serializers import (
    DryRunSerializer, MemberStageSerializer, PeriodSerializer, StageRulesSerializer, StageRulesVersionSerializer, RunSerializer,
    SummarySerializer, TransitionsSerializer,
)

STORE_GUIDE = [
    OpenApiParameter("store_id", int, description="Only members of this store."),
    OpenApiParameter("guide_id", int, description="Only members of this guide."),
]
PERIOD = [
    OpenApiParameter("since", str, description="First local day, YYYY-MM-DD (default: 29 days before until)."),
    OpenApiParameter("until", str, description="Last local day, YYYY-MM-DD (default: the local day of the last run, or today)."),
]


class RulesConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class LifecycleViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """The brand's lifecycle: members per stage, flows between stages, and the stage rules."""

    queryset = MemberLifecycle.objects.unscoped().none()
    serializer_class = SummarySerializer

    def get_permissions(self):
        if self.action in ("rules", "dry_run") and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            return [CanManageSettings()]
        return super().get_permissions()

    def _period(self):
        today = services.reporting_day(self.tenant, timezone.now())
        params = PeriodSerializer(data=self.request.query_params, today=today)
        params.is_valid(raise_exception=True)
        return params.validated_data

    @extend_schema(parameters=STORE_GUIDE, responses=SummarySerializer)
    @action(detail=False)
    def summary(self, request):
        """Members per stage now, with the churn warning counts, as of the last run."""
        period = self._period()
        data = queries.summary(self.tenant, self.staff, period.get("store_id"), period.get("guide_id"))
        return Response(SummarySerializer(data).data)

    @extend_schema(parameters=PERIOD + STORE_GUIDE, responses=TransitionsSerializer)
    @action(detail=False)
    def transitions(self, request):
        """Flows between stages in a period (from x to matrix), win-backs and churn, with their rates."""
        p = self._period()
        data = queries.transitions(self.tenant, p["since"], p["until"], self.staff, p.get("store_id"), p.get("guide_id"))
        return Response(TransitionsSerializer(data).data)

    def _rules_payload(self):
        rules = services.current_rules(self.tenant)
        return StageRulesSerializer(rules).data

    @extend_schema(methods=["GET"], responses=StageRulesSerializer)
    @extend_schema(methods=["PUT"], request=StageRulesSerializer, responses=StageRulesSerializer)
    @action(detail=False, methods=["get", "put"])
    def rules(self, request):
        """The stage rules. PUT saves a new version (owners, operators and API keys); the next nightly
        run re-scores every member under them."""
        if request.method == "GET":
            return Response(self._rules_payload())
        current = services.current_rules(self.tenant).values()
        serializer = StageRulesSerializer(data=request.data, context={"current": current}, partial=False)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        label = self.staff.name if self.staff else f"api-key:{request.auth.name}"
        try:
            services.update_rules(
                self.tenant, data, changed_by=self.staff, label=label, expected_version=data.pop("version", None)
            )
        except services.RulesConflict as conflict:
            raise RulesConflictError(
                _("The rules were changed meanwhile (now version %(version)s); reload and try again.")
                % {"version": conflict.current_version}
            ) from None
        return Response(self._rules_payload())

    @extend_schema(responses=StageRulesVersionSerializer(many=True))
    @action(detail=False, url_path="rules/history")
    def rules_history(self, request):
        """Every change of the rules, newest first: who, when, the old and the new values."""
        versions = StageRulesVersion.objects.order_by("-version")
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(StageRulesVersionSerializer(page, many=True).data)

    @extend_schema(request=StageRulesSerializer, responses=DryRunSerializer)
    @action(detail=False, methods=["post"], url_path="rules/dry-run")
    def dry_run(self, request):
        """How many members would move from which stage to which under these values; nothing is saved."""
        current = services.current_rules(self.tenant).values()
        serializer = StageRulesSerializer(data=request.data, context={"current": current})
        serializer.is_valid(raise_exception=True)
        values = {**current, **{k: v for k, v in serializer.validated_data.items() if k in current}}
        return Response(DryRunSerializer(services.dry_run(self.tenant, values)).data)


class LifecycleRunViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Scoring runs, newest first: kind, as_of, members scored and the changes by from→to."""

    serializer_class = RunSerializer
    queryset = LifecycleRun.objects.unscoped().none()
    filterset_fields = ["kind", "status"]

    def get_queryset(self):
        return LifecycleRun.objects.order_by("-id")


class MemberStageViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """A member's stage, since when, the churn warning, why (the rule and the values it compared)
    and the history of changes."""

    queryset = MemberLifecycle.objects.unscoped().none()
    serializer_class = MemberStageSerializer
    pagination_class = None

    @extend_schema(responses=MemberStageSerializer, parameters=[OpenApiParameter("member_pk", int, OpenApiParameter.PATH)])
    @action(detail=False, url_path="stage")
    def stage(self, request, member_pk=None):
        if not str(member_pk).isdigit():
            raise Http404
        member = visible_members(self.staff).filter(pk=int(member_pk)).first()
        if member is None:
            raise Http404
        data = queries.member_stage(self.tenant, member) or {
            "member_id": member.pk, "stage": None, "stage_label": None, "churn_warning": False, "since": None,
            "warning_since": None, "as_of": None, "explanation": None, "metrics": None, "history": [],
        }
        return Response(MemberStageSerializer(data).data)
