"""Points, tiers, tier settings, points rules and member days over the API."""
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from scrm.api import CursorPagination, TenantModelViewSet, TenantViewSetMixin
from scrm.auth import CanManageSettings

from . import points
from .models import MemberDay, MemberTier, PointsEntry, PointsRules, Tier, TierSettings
from .queries import visible_members


class PointsRefused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "refused"


def _refused(error):
    if error.code == "unknown_member":
        return exceptions.NotFound(error.message, code=error.code)
    return PointsRefused(error.message, code=error.code)


class PointsEntrySerializer(serializers.ModelSerializer):
    member_id = serializers.IntegerField(read_only=True)
    order_id = serializers.IntegerField(read_only=True, allow_null=True)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = PointsEntry
        fields = ["id", "member_id", "kind", "kind_label", "points", "balance_after", "reason", "order_id", "occurred_at"]
        read_only_fields = fields


class TierSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = ["id", "name", "rank", "threshold", "benefits"]
        read_only_fields = ["id"]

    def validate_rank(self, value):
        others = Tier.objects.filter(rank=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(_("Another tier has this rank."))
        return value


class TierSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = TierSettings
        fields = ["basis", "hold_days", "updated_at"]
        read_only_fields = ["updated_at"]


class PointsRulesSerializer(serializers.ModelSerializer):
    class Meta:
        model = PointsRules
        fields = ["points_per_yuan", "sign_in_points", "streak_days", "streak_bonus", "expiry", "updated_at"]
        read_only_fields = ["updated_at"]


class MemberDaySerializer(serializers.ModelSerializer):
    class Meta:
        model = MemberDay
        fields = ["id", "name", "day_of_month", "weekday", "benefits", "active"]
        read_only_fields = ["id"]

    def validate(self, attrs):
        day = attrs.get("day_of_month", getattr(self.instance, "day_of_month", None))
        weekday = attrs.get("weekday", getattr(self.instance, "weekday", None))
        if day is None and weekday is None:
            raise serializers.ValidationError({"day_of_month": [_("Give a day of the month or a weekday.")]})
        return attrs


class MemberPointsSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    balance = serializers.IntegerField()
    tier = TierSerializer(allow_null=True)
    tier_expires_at = serializers.DateTimeField(allow_null=True)
    paid_member = serializers.BooleanField()
    paid_until = serializers.DateField(allow_null=True)
    recent = PointsEntrySerializer(many=True)


class MemberRequestSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()


class AdjustSerializer(MemberRequestSerializer):
    points = serializers.IntegerField()
    reason = serializers.CharField(max_length=200)


class SpendSerializer(MemberRequestSerializer):
    points = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(choices=[(k.value, k.label) for k in PointsEntry.SPENDING])
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    key = serializers.CharField(max_length=120, required=False, allow_blank=True,
                                help_text=_("Names the spend (e.g. the exchange order id): the same key again spends nothing."))


class AwardSerializer(serializers.Serializer):
    member_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=1000)
    points = serializers.IntegerField(min_value=1)
    key = serializers.CharField(max_length=120, help_text=_("Names the activity; a member gets its points once."))
    reason = serializers.CharField(max_length=200)


class PaidMembershipSerializer(MemberRequestSerializer):
    paid_until = serializers.DateField(allow_null=True)


class AwardResultSerializer(serializers.Serializer):
    credited = serializers.IntegerField()


class SignInResultSerializer(serializers.Serializer):
    first_today = serializers.BooleanField()
    streak = serializers.IntegerField()
    entry = PointsEntrySerializer()


def member_points(tenant, member_id, recent=10):
    status_row = MemberTier.objects.filter(tenant=tenant, member_id=member_id).select_related("tier").first()
    return {
        "member_id": member_id,
        "balance": points.balance_of(tenant, member_id),
        "tier": status_row.tier if status_row else None,
        "tier_expires_at": status_row.expires_at if status_row and status_row.tier_id else None,
        "paid_member": bool(status_row and status_row.paid_member),
        "paid_until": status_row.paid_until if status_row else None,
        "recent": list(PointsEntry.objects.filter(tenant=tenant, member_id=member_id)[:recent]),
    }


class PointsViewSet(TenantViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The points ledger (list, newest first; filter with ``member_id`` and ``kind``) and the writes
    on it. Guides see and write only their own members' points."""

    serializer_class = PointsEntrySerializer
    pagination_class = CursorPagination
    queryset = PointsEntry.objects.unscoped().none()
    filterset_fields = ["member_id", "kind"]

    def get_queryset(self):
        qs = PointsEntry.objects.all()
        if self.staff is not None and not self.staff.sees_all_members:
            qs = qs.filter(member__in=visible_members(self.staff))
        return qs

    def _member_id(self, member_id):
        get_object_or_404(visible_members(self.staff), pk=member_id)
        return member_id

    def _validated(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(responses=MemberPointsSerializer)
    @action(detail=False, methods=["get"], url_path=r"members/(?P<member_id>\d+)")
    def member(self, request, member_id=None):
        """One member's balance, tier, paid membership and latest entries."""
        self._member_id(int(member_id))
        return Response(MemberPointsSerializer(member_points(self.tenant, int(member_id))).data)

    @extend_schema(request=AdjustSerializer, responses=PointsEntrySerializer)
    @action(detail=False, methods=["post"])
    def adjust(self, request):
        """A manual adjustment with a reason (owners and operators). A deduction cannot overdraw."""
        if self.staff is not None and not self.staff.can_manage_settings:
            raise exceptions.PermissionDenied(_("Only owners and operators may adjust points."))
        data = self._validated(AdjustSerializer)
        try:
            entry = points.adjust_points(
                self.tenant, self._member_id(data["member_id"]), data["points"], reason=data["reason"],
                as_of=timezone.now(), staff=self.staff,
            )
        except points.PointsError as error:
            raise _refused(error) from None
        return Response(PointsEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SpendSerializer, responses=PointsEntrySerializer)
    @action(detail=False, methods=["post"])
    def spend(self, request):
        """Spend points on an exchange, lottery, flash sale or cash off; 422 insufficient_points if the balance is short."""
        data = self._validated(SpendSerializer)
        try:
            entry = points.spend_points(
                self.tenant, self._member_id(data["member_id"]), data["points"], kind=data["kind"],
                reason=data["reason"], key=data.get("key") or None, as_of=timezone.now(),
            )
        except points.PointsError as error:
            raise _refused(error) from None
        return Response(PointsEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberRequestSerializer, responses=SignInResultSerializer)
    @action(detail=False, methods=["post"], url_path="sign-in")
    def sign_in(self, request):
        """The daily sign-in: points once a day (tenant's time zone), a bonus at each completed streak."""
        data = self._validated(MemberRequestSerializer)
        result = points.sign_in(self.tenant, self._member_id(data["member_id"]), as_of=timezone.now())
        body = {"first_today": result.first_today, "streak": result.streak, "entry": result.entry}
        return Response(SignInResultSerializer(body).data)

    @extend_schema(request=AwardSerializer, responses=AwardResultSerializer)
    @action(detail=False, methods=["post"])
    def award(self, request):
        """Points for an activity to up to 1,000 members; each member gets them once per ``key``."""
        if self.staff is not None and not self.staff.can_manage_settings:
            raise exceptions.PermissionDenied(_("Only owners and operators may award points."))
        data = self._validated(AwardSerializer)
        ids = list(visible_members(self.staff).filter(pk__in=data["member_ids"]).values_list("pk", flat=True))
        credited = points.award_points(
            self.tenant, ids, data["points"], key=f"activity:{data['key']}", reason=data["reason"], as_of=timezone.now()
        )
        return Response({"credited": credited})

    @extend_schema(request=PaidMembershipSerializer, responses=MemberPointsSerializer)
    @action(detail=False, methods=["post"], url_path="paid-membership")
    def paid_membership(self, request):
        """Start, extend or end (``paid_until`` null) a paid membership."""
        if self.staff is not None and not self.staff.can_manage_settings:
            raise exceptions.PermissionDenied(_("Only owners and operators may change paid memberships."))
        data = self._validated(PaidMembershipSerializer)
        member_id = self._member_id(data["member_id"])
        points.set_paid_membership(self.tenant, member_id, paid_until=data["paid_until"])
        return Response(MemberPointsSerializer(member_points(self.tenant, member_id)).data)


class TierViewSet(TenantModelViewSet):
    serializer_class = TierSerializer
    permission_classes = [CanManageSettings]
    queryset = Tier.objects.unscoped().none()
    pagination_class = None

    def get_queryset(self):
        return Tier.objects.order_by("rank")


class MemberDayViewSet(TenantModelViewSet):
    serializer_class = MemberDaySerializer
    permission_classes = [CanManageSettings]
    queryset = MemberDay.objects.unscoped().none()
    pagination_class = None

    def get_queryset(self):
        return MemberDay.objects.order_by("name")


class _SingletonViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """GET and PUT/PATCH one settings row of the brand (defaults until first saved)."""

    permission_classes = [CanManageSettings]
    model = None
    loader = None

    def _current(self):
        return type(self).loader(self.tenant)

    def list(self, request):
        return Response(self.get_serializer(self._current()).data)

    @extend_schema(methods=["put", "patch"], request=None)
    @action(detail=False, methods=["put", "patch"], url_path="current")
    def current(self, request):
        serializer = self.get_serializer(self._current(), data=request.data, partial=request.method == "PATCH")
        serializer.is_valid(raise_exception=True)
        serializer.save(tenant=self.tenant)
        return Response(serializer.data)


class PointsRulesViewSet(_SingletonViewSet):
    """The brand's points rules: points per ¥1, sign-in points and streak bonus, expiry policy."""

    serializer_class = PointsRulesSerializer
    queryset = PointsRules.objects.unscoped().none()
    loader = staticmethod(points.rules_for)


class TierSettingsViewSet(_SingletonViewSet):
    """What tiers are measured by (spend or points in 12 months) and how long a tier holds."""

    serializer_class = TierSettingsSerializer
    queryset = TierSettings.objects.unscoped().none()
    loader = staticmethod(points.tier_settings_for)


def register(router):
    router.register("points", PointsViewSet, basename="points")
    router.register("tiers", TierViewSet, basename="tier")
    router.register("member-days", MemberDayViewSet, basename="memberday")
    router.register("points-rules", PointsRulesViewSet, basename="pointsrules")
    router.register("tier-settings", TierSettingsViewSet, basename="tiersettings")
