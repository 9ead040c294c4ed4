"""The performance reports (业绩分佣) and a campaign's report over the API: thin, reports.py reads."""
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from scrm.api import TenantViewSetMixin

from . import queries, reports
from .api import OperatorsOnly
from .models import Campaign
from .report_serializers import (
    CampaignReportSerializer, GuidePerformanceSerializer, PerformanceParamsSerializer, StoreParamsSerializer,
    StorePerformanceSerializer,
)

PARAMS = [
    OpenApiParameter("since", str, description="First local day, YYYY-MM-DD (default: 29 days before until)."),
    OpenApiParameter("until", str, description="Last local day, YYYY-MM-DD (default: today in the brand's zone)."),
    OpenApiParameter("store_id", int, description="Only this store (for guides: the guides of this store)."),
    OpenApiParameter("ordering", str, description="A column name, '-' first for descending (default: -sales)."),
]


class _Performance(TenantViewSetMixin, viewsets.GenericViewSet):
    params_class = None
    report = None

    def get_queryset(self):
        return Campaign.objects.none()

    def list(self, request):
        today = reports.default_period(self.tenant, timezone.now())[1]
        params = self.params_class(data=request.query_params, today=today)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        try:
            data = type(self).report(self.tenant, p["since"], p["until"], self.staff, p.get("store_id"), p.get("ordering"))
        except reports.NotAllowed as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        page = self.paginate_queryset(data["rows"])
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        response.data.update({
            "since": p["since"].isoformat(), "until": p["until"].isoformat(),
            "attribution_days": data["attribution_days"], "commission_rate": str(data["commission_rate"]),
        })
        return response


@extend_schema(parameters=PARAMS)
class GuidePerformanceViewSet(_Performance):
    """Per guide over a period: members owned, tasks assigned and done, reply and conversion rates,
    attributed orders and sales (net of refunds) and the commission at the brand's rate (业绩分佣);
    ``sales_gap`` names a guide of the same store with similar members who sold more than twice as much.
    Guides see themselves, store managers their stores' guides, operators and API keys every guide."""

    serializer_class = GuidePerformanceSerializer
    params_class = PerformanceParamsSerializer
    report = staticmethod(reports.guide_performance)


@extend_schema(parameters=PARAMS)
class StorePerformanceViewSet(_Performance):
    """Per store over a period: guides, members, tasks, rates, attributed orders, sales and commission.
    Store managers see their stores; guides are refused."""

    serializer_class = StorePerformanceSerializer
    params_class = StoreParamsSerializer
    report = staticmethod(reports.store_performance)


class CampaignReportViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """A campaign's results per variant and the control (enrolled, touched, replied, converted, sales,
    uplift with its 95% interval, the verdict), the same per local day (``over_time``) and the orders and
    sales credited to each step (``steps``: the last touch before the order within the window)."""

    serializer_class = CampaignReportSerializer
    permission_classes = [OperatorsOnly]

    def get_queryset(self):
        return Campaign.objects.all()

    def retrieve(self, request, pk=None):
        campaign = get_object_or_404(self.get_queryset(), pk=pk)
        results = queries.campaign_results(campaign, self.tenant)
        now = timezone.now()
        data = {
            "id": campaign.pk, "name": campaign.name, **results,
            "over_time": reports.campaign_over_time(campaign, self.tenant, now),
            "steps": reports.step_credit(campaign, self.tenant, now),
        }
        return Response(CampaignReportSerializer(data).data)


def register(router):
    router.register("guide-performance", GuidePerformanceViewSet, basename="guide-performance")
    router.register("store-performance", StorePerformanceViewSet, basename="store-performance")
    router.register("campaign-reports", CampaignReportViewSet, basename="campaign-report")
