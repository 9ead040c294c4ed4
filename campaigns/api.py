"""Campaigns, guide tasks and the outbox over the API: thin, the services do the work."""
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from scrm.api import INVALID_RESPONSE, TenantModelViewSet, TenantViewSetMixin
from scrm.auth import CanManageSettings, IsTenantStaff

from . import delivery, services
from .filters import CampaignFilterSet, GuideTaskFilterSet, MessageFilterSet
from .models import Campaign, GuideTask, Message
from .serializers import CampaignSerializer, GuideTaskSerializer, MessageSerializer, OutcomeSerializer


class OperatorsOnly(IsTenantStaff):
    """The outbox holds addresses: owners, operators and API keys only, for reading too."""

    def has_permission(self, request, view):
        staff = getattr(request._request, "staff", None)
        return super().has_permission(request, view) and (staff is None or staff.can_manage_settings)


class _ReadOnly(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    pass


def _invalid(error):
    return exceptions.ValidationError(error.errors)


CREATE_EXAMPLE = OpenApiExample("A welcome campaign with two steps", request_only=True, value={
    "name": "新客欢迎", "trigger": "stage_entered", "trigger_stage": "introduction", "audience_stores": [3],
    "exit_on_purchase": True, "variants": [{"key": "A", "weight": 50, "label": "¥30"}, {"key": "B", "weight": 40}],
    "control_pct": 10,
    "steps": [
        {"delay_days": 0, "action": "guide_task", "script": "{name}您好，送您{coupon}：{coupon_code}",
         "coupon_template": 7, "due_hours": 48},
        {"delay_days": 3, "action": "message", "channel": "sms", "script": "{name}，新品到店", "variant": "B",
         "promotional": True},
    ],
})


@extend_schema_view(
    create=extend_schema(examples=[CREATE_EXAMPLE], responses={201: CampaignSerializer, 400: INVALID_RESPONSE}),
    partial_update=extend_schema(responses={200: CampaignSerializer, 400: INVALID_RESPONSE}),
    update=extend_schema(responses={200: CampaignSerializer, 400: INVALID_RESPONSE}),
)
class CampaignViewSet(TenantModelViewSet):
    """Campaigns with their steps: owners, operators and API keys create and change them, with the
    dashboard builder's rules; status changes are the activate, pause and end actions."""

    serializer_class = CampaignSerializer
    filterset_class = CampaignFilterSet
    permission_classes = [CanManageSettings]
    queryset = Campaign.objects.unscoped().none()

    def get_queryset(self):
        return Campaign.objects.prefetch_related("steps").order_by("-created_at", "-pk")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": self.tenant}

    def _save(self, serializer, campaign=None):
        data = dict(serializer.validated_data)
        steps = data.pop("steps", None)
        try:
            saved = services.save_campaign(self.tenant, data, steps, campaign=campaign, staff=self.staff)
        except services.CampaignError as exc:
            raise _invalid(exc) from None
        serializer.instance = self.get_queryset().get(pk=saved.pk)

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def _status(self, status):
        try:
            campaign = services.change_status(self.get_object(), status, timezone.now())
        except services.CampaignError as exc:
            raise _invalid(exc) from None
        return Response(self.get_serializer(self.get_queryset().get(pk=campaign.pk)).data)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: INVALID_RESPONSE})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Start (or resume) the campaign: members are enrolled and its steps run. Needs at least one step."""
        return self._status(Campaign.Status.ACTIVE)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: INVALID_RESPONSE})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop enrolling and running steps until the campaign is activated again."""
        return self._status(Campaign.Status.PAUSED)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: INVALID_RESPONSE})
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        """End the campaign for good; its results stay."""
        return self._status(Campaign.Status.ENDED)


class GuideTaskViewSet(_ReadOnly):
    """Guides' 1:1 tasks; guides see their own, store managers their stores'."""

    serializer_class = GuideTaskSerializer
    filterset_class = GuideTaskFilterSet
    queryset = GuideTask.objects.unscoped().none()

    def get_queryset(self):
        tasks = GuideTask.objects.select_related("member").order_by("due_at", "pk")
        return tasks if self.staff is None else tasks & services.visible_tasks(self.staff)

    @extend_schema(request=OutcomeSerializer, responses=GuideTaskSerializer)
    @action(detail=True, methods=["post"])
    def outcome(self, request, pk=None):
        """Record what happened: sent, replied, bought, unreachable, or skipped (with a reason)."""
        task = self.get_object()
        data = OutcomeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.record_outcome(task, data.validated_data["outcome"], timezone.now(),
                                    data.validated_data.get("reason", ""))
        except services.CampaignError as exc:
            raise exceptions.ValidationError(exc.errors) from None
        return Response(GuideTaskSerializer(task).data)


class MessageViewSet(_ReadOnly):
    """The outbox. Owners, operators and API keys only."""

    serializer_class = MessageSerializer
    filterset_class = MessageFilterSet
    permission_classes = [OperatorsOnly]
    queryset = Message.objects.unscoped().none()

    def get_queryset(self):
        return Message.objects.order_by("-created_at", "-pk")

    @extend_schema(request=None, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a dead or failed message again."""
        message = self.get_object()
        delivery.retry_message(message, timezone.now())
        message.refresh_from_db()
        return Response(MessageSerializer(message).data)
