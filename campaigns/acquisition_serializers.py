"""Query parameters and answers of the acquisition results and churn alerts (API and pages)."""
from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from scrm.api import TenantRelatedField
from scrm.models import Staff, Store

from . import acquisition_queries as queries
from .models import Campaign, ChurnAlert, LiveCode

MAX_PERIOD_DAYS = 366


class PeriodSerializer(serializers.Serializer):
    """start and end (local dates, both included); a missing one is filled in: the last 30 days
    by default, or 30 days from a given start / up to a given end."""

    start = serializers.DateField(required=False, help_text=gettext_lazy("First day (YYYY-MM-DD), in the brand's time zone."))
    end = serializers.DateField(required=False, help_text=gettext_lazy("Last day (YYYY-MM-DD), included."))

    def validate(self, data):
        tenant, as_of = self.context["tenant"], self.context["as_of"]
        start, end = data.get("start"), data.get("end")
        if start is None and end is None:
            start, end = queries.default_period(tenant, as_of)
        elif start is None:
            start = end - timedelta(days=29)
        elif end is None:
            end = min(start + timedelta(days=29), as_of.astimezone(tenant.zone).date())
        if end < start:
            raise serializers.ValidationError({"end": [_("The end must be on or after the start (%(start)s).") % {"start": start}]})
        if (end - start).days + 1 > MAX_PERIOD_DAYS:
            raise serializers.ValidationError({"end": [_("A period is at most %(days)d days.") % {"days": MAX_PERIOD_DAYS}]})
        data["start"], data["end"] = start, end
        return data


class AcquisitionParamsSerializer(PeriodSerializer):
    group = serializers.ChoiceField(
        choices=[(k, v) for k, v in queries.GROUPS.items()], required=False, default="channel_type",
        help_text=gettext_lazy("Rows per channel_type, live_code, store or guide."),
    )
    live_code = TenantRelatedField(LiveCode, required=False, help_text=gettext_lazy("Only this live code's joins."))


class ChurnAlertParamsSerializer(PeriodSerializer):
    store_id = TenantRelatedField(Store, required=False, help_text=gettext_lazy("Members of this home store."))
    guide_id = TenantRelatedField(Staff, required=False, help_text=gettext_lazy("Members of this guide."))
    threshold = serializers.IntegerField(
        required=False, default=queries.MASS_LOSS_THRESHOLD, min_value=1, max_value=10_000,
        help_text=gettext_lazy("A guide who loses this many contacts on one day is listed in guides_over_threshold."),
    )

    def validate(self, data):
        data = super().validate(data)
        if (data["end"] - data["start"]).days + 1 > 92:
            raise serializers.ValidationError({"end": [_("Churn alerts cover at most %(days)d days.") % {"days": 92}]})
        return data


class HandToCampaignSerializer(serializers.Serializer):
    campaign = TenantRelatedField(Campaign, help_text=gettext_lazy("An active campaign."))
    members = serializers.ListField(
        child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=settings.BULK_MAX_ITEMS,
        help_text=gettext_lazy("Ids of members in the churn alerts."),
    )

    def validate_campaign(self, campaign):
        if campaign.status != Campaign.Status.ACTIVE:
            raise serializers.ValidationError(_("Choose an active campaign."))
        return campaign


class DeletionSerializer(serializers.Serializer):
    """One churn alert: the member card, the guide, days as a contact and the last order."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    masked_mobile = serializers.CharField()
    stage = serializers.SerializerMethodField()
    churn_warning = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    guide = serializers.SerializerMethodField()
    store = serializers.SerializerMethodField()
    deleted_at = serializers.DateTimeField(source="contact_status_changed_at")
    contact_since = serializers.DateTimeField()
    days_as_contact = serializers.SerializerMethodField()
    last_order_at = serializers.DateTimeField(allow_null=True)
    last_order_total = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)

    def _stage(self, member):
        return self.context.get("stages", {}).get(member.pk, (None, False))

    def get_stage(self, member) -> str | None:
        return self._stage(member)[0]

    def get_churn_warning(self, member) -> bool:
        return bool(self._stage(member)[1])

    def get_tags(self, member) -> list[str]:
        return [name for name, _colour in self.context.get("tags", {}).get(member.pk, [])]

    def get_guide(self, member) -> dict | None:
        guide = member.owner_guide
        return {"id": guide.pk, "name": guide.name} if guide else None

    def get_store(self, member) -> dict | None:
        store = member.home_store
        return {"id": store.pk, "name": store.name} if store else None

    def get_days_as_contact(self, member) -> int:
        return queries.days_as_contact(member)


def _person(staff):
    return {"id": staff.pk, "name": staff.name} if staff is not None else None


class ChurnAlertSerializer(serializers.ModelSerializer):
    """A mass-loss alert (批量删好友预警): a guide lost ``deletions`` WeCom contacts on ``day``.

    ``recipients`` are the staff it was meant for; ``channels.wecom`` and ``channels.email`` say
    what each channel did: ``status`` sent, failed, off (not set up) or nobody (no recipient has a
    WeCom user id / an email address), ``to`` whom it went to, ``missed`` the WeCom user ids WeCom
    could not reach, ``detail`` the error of a failure."""

    guide = serializers.SerializerMethodField()
    store = serializers.SerializerMethodField()
    acknowledged_by = serializers.SerializerMethodField()

    class Meta:
        model = ChurnAlert
        fields = ["id", "guide", "store", "day", "deletions", "threshold", "created_at", "notified_at",
                  "recipients", "channels", "acknowledged_at", "acknowledged_by"]
        read_only_fields = fields

    def get_guide(self, alert) -> dict:
        return _person(alert.guide)

    def get_store(self, alert) -> dict | None:
        return {"id": alert.store.pk, "name": alert.store.name} if alert.store_id else None

    def get_acknowledged_by(self, alert) -> dict | None:
        return _person(alert.acknowledged_by)
