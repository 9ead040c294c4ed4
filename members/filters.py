import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import Staff, Store

from .models import ContactStatus, Event, EventType, Member, Order, normalise_mobile


def _stores(request):
    return Store.objects.all()


def _guides(request):
    return Staff.objects.filter(role=Staff.Role.GUIDE)


def _stage_choices():
    # Read through the reverse relation so that members never imports the lifecycle app above it.
    return Member._meta.get_field("lifecycle").related_model._meta.get_field("stage").choices


class MemberFilterSet(django_filters.FilterSet):
    """Serves the API list, the dashboard list and its filter form (same names as the serializer)."""

    q = django_filters.CharFilter(method="search", label=_("Name or mobile"))
    external_id = django_filters.CharFilter(label=_("External id"))
    store_id = django_filters.ModelChoiceFilter(field_name="home_store", queryset=_stores, label=_("Store"))
    guide_id = django_filters.ModelChoiceFilter(field_name="owner_guide", queryset=_guides, label=_("Guide"))
    joined_after = django_filters.DateFilter(field_name="joined_at", lookup_expr="date__gte", label=_("Joined from"))
    joined_before = django_filters.DateFilter(field_name="joined_at", lookup_expr="date__lte", label=_("Joined until"))
    contact_status = django_filters.ChoiceFilter(choices=ContactStatus.choices, label=_("Contact status"))
    stage = django_filters.ChoiceFilter(field_name="lifecycle__stage", choices=_stage_choices, label=_("Stage"))
    churn_warning = django_filters.BooleanFilter(field_name="lifecycle__churn_warning", label=_("Churn warning"))

    class Meta:
        model = Member
        fields = [
            "q", "external_id", "store_id", "guide_id", "joined_after", "joined_before", "contact_status", "stage",
            "churn_warning",
        ]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        condition = Q(name__startswith=value) | Q(external_id=value)
        try:
            mobile = normalise_mobile(value)
        except ValueError:
            mobile = ""
        if mobile and len(mobile) == 11:
            condition |= Q(mobile=mobile)
        elif value.isdigit() and len(value) >= 4:
            condition |= Q(mobile__endswith=value) if len(value) == 4 else Q(mobile__startswith=value)
        return queryset.filter(condition)


class OrderFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    member_id = django_filters.NumberFilter(field_name="member_id")
    store_id = django_filters.ModelChoiceFilter(field_name="store", queryset=_stores)
    guide_id = django_filters.ModelChoiceFilter(field_name="guide", queryset=_guides)
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    placed_after = django_filters.DateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = django_filters.DateTimeFilter(field_name="placed_at", lookup_expr="lt")
    bound = django_filters.BooleanFilter(field_name="member", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Order
        fields = ["external_id", "member_id", "store_id", "guide_id", "status", "placed_after", "placed_before", "bound"]


class EventFilterSet(django_filters.FilterSet):
    member_id = django_filters.NumberFilter(field_name="member_id")
    type = django_filters.ChoiceFilter(choices=EventType.choices)
    occurred_after = django_filters.DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.DateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["member_id", "type", "occurred_after", "occurred_before"]
