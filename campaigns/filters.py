import django_filters

from .models import Campaign, GuideTask, Message


class CampaignFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Campaign
        fields = ["status", "trigger", "q"]


class GuideTaskFilterSet(django_filters.FilterSet):
    guide_id = django_filters.NumberFilter(field_name="guide_id")
    store_id = django_filters.NumberFilter(field_name="store_id")
    campaign_id = django_filters.NumberFilter(field_name="campaign_id")

    class Meta:
        model = GuideTask
        fields = ["status", "guide_id", "store_id", "campaign_id"]


class MessageFilterSet(django_filters.FilterSet):
    campaign_id = django_filters.NumberFilter(field_name="campaign_id")

    class Meta:
        model = Message
        fields = ["status", "channel", "campaign_id"]
