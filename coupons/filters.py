from datetime import timedelta

import django_filters
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import normalise_mobile

from .models import Coupon, CouponTemplate, normalise_code


class CouponTemplateFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label=_("Name"))
    type = django_filters.ChoiceFilter(choices=CouponTemplate.Type.choices, label=_("Type"))
    active = django_filters.BooleanFilter(label=_("Active"))

    class Meta:
        model = CouponTemplate
        fields = ["q", "type", "active"]


class CouponFilterSet(django_filters.FilterSet):
    """Serves the API list and the dashboard's coupon search."""

    q = django_filters.CharFilter(method="search", label=_("Code, member mobile or external id"))
    code = django_filters.CharFilter(method="by_code", label=_("Code"))
    member_id = django_filters.NumberFilter(field_name="member_id", label=_("Member"))
    template_id = django_filters.NumberFilter(field_name="template_id", label=_("Template"))
    campaign_id = django_filters.NumberFilter(field_name="campaign_id", label=_("Campaign"))
    status = django_filters.ChoiceFilter(choices=Coupon.Status.choices, label=_("Status"))
    order_external_id = django_filters.CharFilter(label=_("Order"))
    expires_within_days = django_filters.NumberFilter(
        method="expiring", label=_("Expires within (days)"), min_value=0
    )

    class Meta:
        model = Coupon
        fields = ["q", "code", "member_id", "template_id", "campaign_id", "status", "order_external_id"]

    def by_code(self, queryset, name, value):
        return queryset.filter(code=normalise_code(value))

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        try:
            mobile = normalise_mobile(value)
        except ValueError:
            mobile = ""
        if mobile and len(mobile) == 11:
            return queryset.filter(member__mobile=mobile)
        code = normalise_code(value)
        by_code = queryset.filter(code=code)
        if by_code.exists():
            return by_code
        return queryset.filter(member__external_id=value)

    def expiring(self, queryset, name, value):
        now = timezone.now()
        return queryset.filter(
            status__in=Coupon.USABLE, expires_at__gt=now, expires_at__lte=now + timedelta(days=int(value))
        )
