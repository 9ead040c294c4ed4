"""Acquisition results and churn alerts over the API: thin, the queries and services do the work."""
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from scrm.api import INVALID_RESPONSE, TenantViewSetMixin
from scrm.pagination import StandardPagination

from members.models import Member

from . import acquisition_queries as queries
from . import alerts, services
from .acquisition_filters import ChurnAlertFilterSet
from .acquisition_serializers import (
    AcquisitionParamsSerializer, ChurnAlertParamsSerializer, ChurnAlertSerializer, DeletionSerializer,
    HandToCampaignSerializer,
)
from .acquisition_services import hand_to_campaign
from .models import ChurnAlert, LiveCodeJoin


def _params(serializer_class, request, tenant, as_of):
    params = serializer_class(data=request.query_params, context={"tenant": tenant, "as_of": as_of, "request": request})
    params.is_valid(raise_exception=True)
    return params.validated_data


def _figures(row):
    """A row of figures as JSON: money as decimal strings, days as ISO dates."""
    out = {}
    for key, value in row.items():
        if key == "days":
            out[key] = [_figures(d) for d in value]
        elif key == "day":
            out[key] = value.isoformat()
        elif key in ("cost", "cost_per_join", "cost_per_converted"):
            out[key] = None if value is None else f"{value:.2f}"
        else:
            out[key] = value
    return out


FIGURES = inline_serializer("AcquisitionResults", {
    "group": serializers.CharField(), "start": serializers.DateField(), "end": serializers.DateField(),
    "totals": serializers.DictField(), "rows": serializers.ListField(child=serializers.DictField()),
    "days": serializers.ListField(child=serializers.DictField()),
    "leaderboard": serializers.DictField(),
})


class AcquisitionViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """Acquisition through live codes: landing views, joins, 7- and 30-day retention, 30-day
    conversion and cost, per group and day; and the store and guide leaderboard."""

    pagination_class = None
    queryset = LiveCodeJoin.objects.unscoped().none()

    @extend_schema(
        parameters=[AcquisitionParamsSerializer],
        responses={200: FIGURES, 400: INVALID_RESPONSE},
        description=(
            "Figures of the joins in [start, end] (local days, both included; the last 30 days by default), one row "
            "per `group` (channel_type, live_code, store or guide) with its days. `retention_7` and `retention_30` are "
            "shares of the joins at least 7 / 30 days old whose member still had the guide then; `conversion` is the "
            "share of joins with an order, not refunded, within 30 days after joining; cost is a code's cost spread "
            "over all its joins. Guides see their own joins, store managers their stores'."
        ),
    )
    def list(self, request):
        as_of = timezone.now()
        data = _params(AcquisitionParamsSerializer, request, self.tenant, as_of)
        live_code = data.get("live_code")
        params = queries.Params(data["group"], data["start"], data["end"], live_code.pk if live_code else None)
        figures = queries.results(self.tenant, params, as_of, self.staff)
        board = queries.leaderboard(self.tenant, data["start"], data["end"], as_of, self.staff)
        return Response({
            "group": params.group, "start": params.start.isoformat(), "end": params.end.isoformat(),
            "as_of": as_of.isoformat(), "totals": _figures(figures["totals"]),
            "rows": [_figures(r) for r in figures["rows"]], "days": [_figures(d) for d in figures["days"]],
            "leaderboard": {k: [_figures(r) for r in rows] for k, rows in board.items()},
        })


class ChurnAlertViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """Churn alerts (流失提醒): members who deleted their guide, newest first."""

    serializer_class = DeletionSerializer
    pagination_class = StandardPagination
    queryset = Member.objects.unscoped().none()

    def get_queryset(self):
        return queries.visible_deletions(self.staff)

    @extend_schema(
        parameters=[ChurnAlertParamsSerializer],
        responses={200: DeletionSerializer(many=True), 400: INVALID_RESPONSE},
        description=(
            "Members whose contact status became deleted_by_customer in [start, end] (the last 30 days by default), "
            "newest first, with the member card, the guide, days as a contact and the last order. "
            "`guides_over_threshold` lists guides who lost `threshold` (default 5) or more contacts on one day. "
            "Guides see their own members, store managers their stores'."
        ),
    )
    def list(self, request):
        as_of = timezone.now()
        data = _params(ChurnAlertParamsSerializer, request, self.tenant, as_of)
        store, guide = data.get("store_id"), data.get("guide_id")
        members = queries.deletions(
            self.tenant, self.staff, data["start"], data["end"],
            store_id=store.pk if store else None, guide_id=guide.pk if guide else None,
        )
        page = self.paginate_queryset(members)
        ids = [m.pk for m in page]
        listed = DeletionSerializer(page, many=True, context={
            "stages": queries.stages_of(ids), "tags": queries.tags_of(ids),
        }).data
        response = self.get_paginated_response(listed)
        response.data["threshold"] = data["threshold"]
        response.data["guides_over_threshold"] = [
            {**row, "day": row["day"].isoformat()}
            for row in queries.guides_over_threshold(self.tenant, self.staff, data["start"], data["end"], data["threshold"])
        ]
        return response

    @extend_schema(
        request=HandToCampaignSerializer,
        responses={200: inline_serializer("HandedToCampaign", {
            "selected": serializers.IntegerField(), "enrolled": serializers.IntegerField(),
            "already": serializers.IntegerField(), "not_in_audience": serializers.IntegerField(),
        }), 400: INVALID_RESPONSE},
    )
    @action(detail=False, methods=["post"], url_path="hand-to-campaign")
    def hand_to_campaign(self, request):
        """Enrol members of the churn alerts in an active campaign (e.g. the SMS recall or the farewell
        survey). Enrolling again does nothing twice: `already` counts those who were in it before."""
        if self.staff is not None and self.staff.role == self.staff.Role.GUIDE:
            raise exceptions.PermissionDenied(_no_guides())
        body = HandToCampaignSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        ids = sorted(set(body.validated_data["members"]))
        found = set(self.get_queryset().filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise exceptions.ValidationError({"members": [_not_alerted(missing)]})
        try:
            outcome = hand_to_campaign(self.tenant, body.validated_data["campaign"], ids, timezone.now())
        except services.CampaignError as exc:
            raise exceptions.ValidationError(exc.errors) from None
        return Response(outcome)


class MassLossAlertViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           viewsets.GenericViewSet):
    """Mass-loss alerts (批量删好友预警): each guide who lost the alert threshold (default 5) or more
    WeCom contacts on one local day, found by the daily check, with whom it notified and through which
    channel, latest day first. Guides see their own, store managers their stores'."""

    serializer_class = ChurnAlertSerializer
    filterset_class = ChurnAlertFilterSet
    queryset = ChurnAlert.objects.unscoped().none()

    def get_queryset(self):
        return queries.visible_alerts(self.staff).order_by("-day", "-deletions", "pk")

    @extend_schema(request=None, responses={200: ChurnAlertSerializer, 403: INVALID_RESPONSE, 404: INVALID_RESPONSE})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Mark the alert as handled. Store managers and operators may; the first acknowledgement stands."""
        alert = self.get_object()
        if not alerts.may_acknowledge(self.staff):
            raise exceptions.PermissionDenied(_no_acknowledging())
        return Response(ChurnAlertSerializer(alerts.acknowledge(alert, self.staff, timezone.now())).data)


def _no_acknowledging():
    return _("Only store managers and operators acknowledge mass-loss alerts.")


def _no_guides():
    return _("Only store managers and operators hand members to a campaign.")


def _not_alerted(ids):
    return _("Not members who deleted their guide, or not yours: %(ids)s.") % {"ids": ", ".join(map(str, ids[:20]))}


def register(router):
    router.register("acquisition", AcquisitionViewSet, basename="acquisition")
    router.register("churn-alerts/mass-losses", MassLossAlertViewSet, basename="mass-loss-alert")
    router.register("churn-alerts", ChurnAlertViewSet, basename="churn-alert")
