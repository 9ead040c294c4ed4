import django_filters

from .models import Staff, Store


class StoreFilterSet(django_filters.FilterSet):
    code = django_filters.CharFilter()
    city = django_filters.CharFilter()
    region = django_filters.CharFilter()
    active = django_filters.BooleanFilter()

    class Meta:
        model = Store
        fields = ["code", "city", "region", "active"]


class StaffFilterSet(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Staff.Role.choices)
    active = django_filters.BooleanFilter()
    store_id = django_filters.NumberFilter(field_name="stores")

    class Meta:
        model = Staff
        fields = ["role", "active", "store_id"]
