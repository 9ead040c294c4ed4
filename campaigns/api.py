"""Campaigns, guide tasks and the outbox over the API: thin, the services do the work."""
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from scrm.api import TenantViewSetMixin
from scrm.auth import IsTenantStaff

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


class CampaignViewSet(_ReadOnly):
    """Campaigns with their steps (built on the dashboard)."""

    serializer_class = CampaignSerializer
    filterset_class = CampaignFilterSet
    queryset = Campaign.objects.unscoped().none()

    def get_queryset(self):
        return Campaign.objects.prefetch_related("steps").order_by("-created_at", "-pk")


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
