"""Surveys over the API, read-only: surveys with their questions, the per-question summary, and
the responses with their answers (owners, operators and API keys only: answers are personal)."""
import django_filters
from django.db.models import Count, Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from scrm.api import TenantViewSetMixin

from . import surveys
from .api import OperatorsOnly
from .models import Answer, Survey, SurveyResponse
from .survey_serializers import SurveyResponseSerializer, SurveySerializer, SurveySummarySerializer


class SurveyFilterSet(django_filters.FilterSet):
    class Meta:
        model = Survey
        fields = ["status"]


class SurveyResponseFilterSet(django_filters.FilterSet):
    survey_id = django_filters.NumberFilter(field_name="survey_id")
    member_id = django_filters.NumberFilter(field_name="member_id")
    submitted_after = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")

    class Meta:
        model = SurveyResponse
        fields = ["survey_id", "member_id", "submitted_after"]


class _ReadOnly(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [OperatorsOnly]


class SurveyViewSet(_ReadOnly):
    """Surveys with their questions in order, and the number of responses."""

    serializer_class = SurveySerializer
    filterset_class = SurveyFilterSet
    queryset = Survey.objects.unscoped().none()

    def get_queryset(self):
        return Survey.objects.prefetch_related("questions").annotate(
            response_count=Count("responses", distinct=True)
        ).order_by("-created_at", "-pk")

    @extend_schema(responses=SurveySummarySerializer)
    @action(detail=True, methods=["get"])
    def summary(self, request, pk=None):
        """Per question: members who answered, and per choice the count and share of them; for a text
        question the latest 50 answers."""
        return Response(SurveySummarySerializer(surveys.summary(self.get_object())).data)


class SurveyResponseViewSet(_ReadOnly):
    """Responses with their answers (one per member and survey). Filter with ``survey_id``."""

    serializer_class = SurveyResponseSerializer
    filterset_class = SurveyResponseFilterSet
    queryset = SurveyResponse.objects.unscoped().none()

    def get_queryset(self):
        return SurveyResponse.objects.select_related("member").prefetch_related(
            Prefetch("answers", queryset=Answer.objects.order_by("pk"))
        ).order_by("-submitted_at", "-pk")


def register(router):
    router.register("surveys", SurveyViewSet, basename="survey")
    router.register("survey-responses", SurveyResponseViewSet, basename="surveyresponse")
