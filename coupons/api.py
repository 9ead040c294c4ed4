from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.queries import visible_members
from scrm.api import CursorPagination, TenantModelViewSet, TenantViewSetMixin
from scrm.auth import CanManageSettings

from . import queries, services
from .filters import CouponFilterSet, CouponTemplateFilterSet
from .models import Coupon, CouponTemplate, normalise_code
from .serializers import (
    CouponSerializer, CouponTemplateSerializer, IssueResultSerializer, IssueSerializer, RedeemSerializer,
    RedemptionSerializer, ResultRowSerializer, UnredeemSerializer, VoidSerializer,
)


class CouponRefused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "refused"


def api_error(error):
    """A service refusal as an API error whose code names the reason (unknown codes are a 404)."""
    if error.code == "unknown_code":
        return exceptions.NotFound(error.message, code=error.code)
    return CouponRefused(error.message, code=error.code)


class CouponTemplateViewSet(TenantModelViewSet):
    """Coupon templates. Owners, operators and API keys change them; everyone may read."""

    serializer_class = CouponTemplateSerializer
    filterset_class = CouponTemplateFilterSet
    permission_classes = [CanManageSettings]
    queryset = CouponTemplate.objects.unscoped().none()

    def get_queryset(self):
        return CouponTemplate.objects.prefetch_related("stores")

    @extend_schema(
        parameters=[OpenApiParameter("group_by", enum=list(queries.GROUPS), default="template")],
        responses=ResultRowSerializer(many=True),
    )
    @action(detail=False, methods=["get"])
    def results(self, request):
        """Issued, claimed, redeemed, expired, 核销率 and sales by template, campaign, store or guide."""
        group_by = request.query_params.get("group_by", "template")
        if group_by not in queries.GROUPS:
            raise exceptions.ValidationError({"group_by": [_("One of: %(names)s.") % {"names": ", ".join(queries.GROUPS)}]})
        rows = queries.coupon_results(self.tenant, group_by)
        return Response(ResultRowSerializer(rows, many=True).data)


class CouponViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Issued coupons, looked up by code. Guides and store managers list only their members' coupons;
    any staff member may redeem a coupon a customer shows."""

    serializer_class = CouponSerializer
    filterset_class = CouponFilterSet
    pagination_class = CursorPagination
    lookup_field = "code"
    lookup_value_regex = "[A-Za-z0-9-]+"
    queryset = Coupon.objects.unscoped().none()

    def get_queryset(self):
        qs = Coupon.objects.select_related("template")
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs

    def get_object(self):
        return get_object_or_404(self.get_queryset(), code=normalise_code(self.kwargs["code"]))

    def _call(self, service, *args, **kwargs):
        try:
            return service(self.tenant, *args, as_of=timezone.now(), **kwargs)
        except services.CouponError as error:
            raise api_error(error) from None

    @extend_schema(request=IssueSerializer, responses=IssueResultSerializer)
    @action(detail=False, methods=["post"])
    def issue(self, request):
        """Issue one coupon of a template to each member named (up to 1,000). Members over the
        template's per-member limit or beyond its stock get none; the answer counts them. With
        ``dry_run`` nothing is issued and the answer says how many would be."""
        if self.staff is not None and not self.staff.can_manage_settings:
            raise exceptions.PermissionDenied(_("Only owners and operators may issue coupons."))
        serializer = IssueSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["dry_run"]:
            counts = services.count_issuable(self.tenant, data["template"], data["members"])
            return Response({**counts, "dry_run": True})
        key = data.get("key")
        result = self._call(
            services.issue_coupons, data["template"], data["members"], source=data["source"],
            source_ref=data["source_ref"], campaign_id=data.get("campaign_id"),
            key_prefix=f"api:{data['template'].pk}:{key}" if key else None, issued_by=self.staff,
        )
        codes = list(Coupon.objects.filter(pk__in=result.coupon_ids).order_by("member_id").values_list("code", flat=True))
        return Response({**result.as_dict(), "dry_run": False, "codes": codes}, status=status.HTTP_201_CREATED if result.issued else 200)

    @extend_schema(request=RedeemSerializer, responses=RedemptionSerializer)
    @action(detail=True, methods=["post"])
    def redeem(self, request, code=None):
        """Redeem (核销) against an order. The same code and order again answers the same redemption
        (with ``replayed`` true), so a till may retry safely. Refusals answer 422 with a code naming
        the reason: already_redeemed, expired, not_yet_valid, voided, below_threshold, wrong_store,
        store_required, wrong_category, categories_required; an unknown code is a 404."""
        serializer = RedeemSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        redemption = self._call(
            services.redeem_coupon, code, order_external_id=data["order_external_id"], amount=data["amount"],
            store=data.get("store"), guide=data.get("guide") or self.staff, categories=data.get("categories"),
        )
        body = {"replayed": redemption.replayed, "coupon": CouponSerializer(redemption.coupon).data}
        return Response(body)

    @extend_schema(request=UnredeemSerializer, responses=CouponSerializer)
    @action(detail=True, methods=["post"])
    def unredeem(self, request, code=None):
        """Undo the redemption for an order (it was refunded); the coupon is usable again until it expires."""
        serializer = UnredeemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = self._call(services.unredeem_coupon, code, order_external_id=serializer.validated_data["order_external_id"])
        return Response(CouponSerializer(coupon).data)

    @extend_schema(request=VoidSerializer, responses=CouponSerializer)
    @action(detail=True, methods=["post"])
    def void(self, request, code=None):
        """Void an issued or claimed coupon."""
        if self.staff is not None and not self.staff.can_manage_settings:
            raise exceptions.PermissionDenied(_("Only owners and operators may void coupons."))
        serializer = VoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = self._call(services.void_coupon, code, reason=serializer.validated_data["reason"])
        return Response(CouponSerializer(coupon).data)

    @extend_schema(request=None, responses=CouponSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request, code=None):
        """The member claimed the coupon (领取) into their wallet."""
        coupon = self._call(services.claim_coupon, code)
        return Response(CouponSerializer(coupon).data)
