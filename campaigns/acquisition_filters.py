import django_filters

from .models import ChurnAlert


class ChurnAlertFilterSet(django_filters.FilterSet):
    """Mass-loss alerts by guide, store, day range and whether they were acknowledged."""

    guide_id = django_filters.NumberFilter(field_name="guide_id")
    store_id = django_filters.NumberFilter(field_name="store_id")
    start = django_filters.DateFilter(field_name="day", lookup_expr="gte", label="start")
    end = django_filters.DateFilter(field_name="day", lookup_expr="lte", label="end")
    acknowledged = django_filters.BooleanFilter(field_name="acknowledged_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ChurnAlert
        fields = ["guide_id", "store_id", "start", "end", "acknowledged"]
