"""Query parameters and rows of the performance reports (业绩分佣) and a campaign's report."""
from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from scrm.models import Store

from .reports import GUIDE_ORDERINGS, MAX_PERIOD_DAYS, STORE_ORDERINGS


class PerformanceParamsSerializer(serializers.Serializer):
    """Local days, inclusive (default: the last 30 days up to today), a store, and an ordering."""

    since = serializers.DateField(required=False, help_text=_("First local day, YYYY-MM-DD (default: 29 days before until)."))
    until = serializers.DateField(required=False, help_text=_("Last local day, YYYY-MM-DD (default: today)."))
    store_id = serializers.IntegerField(required=False, min_value=1, help_text=_("Only this store (and its guides)."))
    ordering = serializers.CharField(required=False, help_text=_("A column, '-' first for descending (default: -sales)."))

    def __init__(self, *args, today, orderings=GUIDE_ORDERINGS, **kwargs):
        super().__init__(*args, **kwargs)
        self.today, self.orderings = today, orderings

    def validate_store_id(self, value):
        if not Store.objects.filter(pk=value).exists():
            raise serializers.ValidationError(_("No such store."))
        return value

    def validate_ordering(self, value):
        if value.lstrip("-") not in self.orderings:
            raise serializers.ValidationError(
                _("Order by one of: %(names)s.") % {"names": ", ".join(self.orderings)}
            )
        return value

    def validate(self, attrs):
        until = attrs.get("until") or self.today
        since = attrs.get("since") or until - timedelta(days=29)
        if since > until:
            raise serializers.ValidationError({"since": [_("Must not be after until.")]})
        if (until - since).days >= MAX_PERIOD_DAYS:
            raise serializers.ValidationError({"since": [_("A period may span at most 366 days.")]})
        return {**attrs, "since": since, "until": until}


class StoreParamsSerializer(PerformanceParamsSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, orderings=STORE_ORDERINGS, **kwargs)


class _Figures(serializers.Serializer):
    members = serializers.IntegerField(help_text=_("Members owned now."))
    tasks_assigned = serializers.IntegerField(help_text=_("Guide tasks created in the period."))
    tasks_done = serializers.IntegerField(help_text=_("Of those, closed with an outcome."))
    reply_rate = serializers.FloatField(help_text=_("Share of the period's tasks where the member replied or bought."))
    conversion_rate = serializers.FloatField(
        help_text=_("Share of the period's tasks followed by an order within the attribution window.")
    )
    orders = serializers.IntegerField(help_text=_("Attributed orders placed in the period."))
    sales = serializers.DecimalField(max_digits=14, decimal_places=2, help_text=_("Their sales, net of refunds."))
    commission = serializers.DecimalField(max_digits=14, decimal_places=2, help_text=_("Sales × the commission rate."))


class StoreRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SalesGapSerializer(serializers.Serializer):
    peer_id = serializers.IntegerField()
    peer_name = serializers.CharField()
    peer_sales = serializers.DecimalField(max_digits=14, decimal_places=2)


class GuidePerformanceSerializer(_Figures):
    id = serializers.IntegerField()
    name = serializers.CharField()
    active = serializers.BooleanField()
    stores = StoreRefSerializer(many=True)
    active_members = serializers.IntegerField(help_text=_("Members in the growth and maturity stages."))
    sales_gap = SalesGapSerializer(
        allow_null=True,
        help_text=_("Set when a guide of the same store with similar members sold more than twice as much."),
    )


class StorePerformanceSerializer(_Figures):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    guides = serializers.IntegerField()


class OverTimeVariantSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    enrolled = serializers.ListField(child=serializers.IntegerField())
    touched = serializers.ListField(child=serializers.IntegerField())
    replied = serializers.ListField(child=serializers.IntegerField())
    converted = serializers.ListField(child=serializers.IntegerField())


class OverTimeSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.DateField())
    variants = OverTimeVariantSerializer(many=True)


class UpliftSerializer(serializers.Serializer):
    diff = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class ArmSerializer(serializers.Serializer):
    variant = serializers.CharField()
    label = serializers.CharField()
    enrolled = serializers.IntegerField()
    touched = serializers.IntegerField()
    replied = serializers.IntegerField()
    converted = serializers.IntegerField()
    rate = serializers.FloatField()
    sales = serializers.DecimalField(max_digits=14, decimal_places=2)
    uplift = UpliftSerializer(allow_null=True)


class StepCreditSerializer(serializers.Serializer):
    step_id = serializers.IntegerField()
    delay_days = serializers.IntegerField()
    action = serializers.CharField()
    variant = serializers.CharField()
    orders = serializers.IntegerField(help_text=_("Orders whose last touch within the attribution window was this step."))
    sales = serializers.DecimalField(max_digits=14, decimal_places=2, help_text=_("Their sales, net of refunds."))


class CampaignReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    attribution_days = serializers.IntegerField()
    arms = ArmSerializer(many=True)
    verdict = serializers.CharField()
    over_time = OverTimeSerializer()
    steps = StepCreditSerializer(many=True)
