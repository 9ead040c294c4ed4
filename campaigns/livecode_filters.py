import django_filters
from django.db.models import Q

from .models import LiveCode, LiveCodeJoin


class LiveCodeFilterSet(django_filters.FilterSet):
    store_id = django_filters.NumberFilter(field_name="store_id")
    guide_id = django_filters.NumberFilter(method="filter_guide", label="guide_id")
    q = django_filters.CharFilter(method="filter_q", label="q")

    class Meta:
        model = LiveCode
        fields = ["status", "channel_type", "rule", "store_id", "guide_id", "q"]

    def filter_guide(self, queryset, name, value):
        """Codes the guide is behind: in the pool, the fixed guide or the backup."""
        return queryset.filter(Q(pool__guide_id=value) | Q(fixed_guide_id=value) | Q(backup_guide_id=value)).distinct()

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(code=value.strip().lower()))


class LiveCodeJoinFilterSet(django_filters.FilterSet):
    guide_id = django_filters.NumberFilter(field_name="guide_id")
    store_id = django_filters.NumberFilter(field_name="store_id")
    member_id = django_filters.NumberFilter(field_name="member_id")
    joined_after = django_filters.IsoDateTimeFilter(field_name="joined_at", lookup_expr="gte")
    joined_before = django_filters.IsoDateTimeFilter(field_name="joined_at", lookup_expr="lt")

    class Meta:
        model = LiveCodeJoin
        fields = ["door", "new_member", "guide_id", "store_id", "member_id", "joined_after", "joined_before"]
