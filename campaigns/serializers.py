"""Campaigns, their steps, guide tasks and the outbox over the API.

A campaign is written through the dashboard builder's own forms (``CampaignForm``, ``StepForm``)
after the API's field checks, so the API and the builder accept exactly the same campaigns.
Errors name the path of what was wrong, flat: ``steps[1].coupon_template``, ``audience_tags[0]``.
"""
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from coupons.models import CouponTemplate
from lifecycle.models import Stage
from scrm.api import TenantRelatedField
from scrm.models import Store
from tagging.models import Segment, Tag

from .forms import CampaignForm, StepForm
from .models import Campaign, GuideTask, LiveCode, Message, Step, Survey
from .services import CONTROL, OUTCOMES


def field_paths(detail, prefix=""):
    """DRF's nested errors ({"steps": [{}, {"tag": [...]}]}) as {"steps[1].tag": [...]}."""
    if isinstance(detail, dict):
        found = {}
        for key, value in detail.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors" and prefix:
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for name, messages in field_paths(value, path).items():
                found.setdefault(name, []).extend(messages)
        return found
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]} if detail else {}
        found = {}
        for index, item in enumerate(detail):
            for name, messages in field_paths(item, f"{prefix}[{index}]").items():
                found.setdefault(name, []).extend(messages)
        return found
    return {prefix or "non_field_errors": [str(detail)]}


class TenantIdsField(serializers.ListField):
    """A list of ids of the caller's own objects (tags, stores), looked up in one query; an id that
    is not the tenant's is an error on its position in the list."""

    child = serializers.IntegerField(min_value=1)

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        ids = list(dict.fromkeys(super().to_internal_value(data)))
        found = set(self.model.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = {
            index: [_("There is no %(thing)s %(id)s.") % {"thing": self.model._meta.verbose_name, "id": pk}]
            for index, pk in enumerate(ids) if pk not in found
        }
        if missing:
            raise serializers.ValidationError(missing)
        return ids

    def to_representation(self, data):
        return list(data)


@extend_schema_field({"type": "string", "enum": list(Stage.values)})
class StageField(serializers.ChoiceField):
    """A lifecycle stage; described inline so that the schema's one stage enum keeps its one name."""

    def __init__(self, **kwargs):
        super().__init__(choices=Stage.choices, **kwargs)


class StepSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(
        required=False, min_value=1,
        help_text=gettext_lazy("On update: the step to keep and change. Leave out to add a step."),
    )
    coupon_template = TenantRelatedField(CouponTemplate, required=False, allow_null=True)
    tag = TenantRelatedField(Tag, required=False, allow_null=True)
    survey = TenantRelatedField(Survey, required=False, allow_null=True)

    class Meta:
        model = Step
        fields = ["id", "position", "delay_days", "action", "variant", "promotional", "skip_if_bought", "script",
                  "channel", "coupon_template", "tag", "survey", "due_hours"]
        read_only_fields = ["position"]


class VariantSerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[\w-]+$", max_length=20, help_text=gettext_lazy("e.g. A, B; not “control”."))
    weight = serializers.IntegerField(min_value=1, max_value=100)
    label = serializers.CharField(required=False, allow_blank=True, max_length=120, default="")

    def validate_key(self, value):
        if value == CONTROL:
            raise serializers.ValidationError(_("“control” is reserved for the holdout group."))
        return value


# The campaign fields the builder's CampaignForm checks, as the API names them.
FORM_FIELDS = ("name", "description", "trigger", "trigger_stage", "trigger_days", "schedule", "schedule_day",
               "segment", "reentry_days", "exit_on_purchase", "exit_on_reply", "control_pct", "trigger_survey")
STEP_FORM_FIELDS = ("delay_days", "action", "variant", "channel", "script", "coupon_template", "tag", "due_hours",
                    "promotional", "skip_if_bought", "survey")


def _form_value(value):
    if value is None:
        return ""
    return value.pk if hasattr(value, "pk") else value


def _form_errors(form, rename=None, prefix=""):
    rename = rename or {}
    errors = {}
    for name, messages in form.errors.items():
        name = rename.get(name, name)
        path = prefix if name == "__all__" and prefix else (f"{prefix}.{name}" if prefix else name)
        errors.setdefault(path.replace("__all__", "non_field_errors"), []).extend(messages)
    return errors


class CampaignSerializer(serializers.ModelSerializer):
    steps = StepSerializer(
        many=True, required=False,
        help_text=gettext_lazy(
            "In order. Given on update, it replaces the steps: a step with an id is kept and changed, one without "
            "is added, one left out is deleted. A step that already ran for a member cannot be deleted, nor its "
            "action, day or variant changed."
        ),
    )
    segment = TenantRelatedField(Segment, required=False, allow_null=True)
    trigger_live_code = TenantRelatedField(LiveCode, required=False, allow_null=True)
    trigger_survey = TenantRelatedField(Survey, required=False, allow_null=True)
    audience_stages = serializers.ListField(child=StageField(), required=False)
    audience_tags = TenantIdsField(Tag, required=False, help_text=gettext_lazy("Members with any of these tags."))
    audience_stores = TenantIdsField(Store, required=False, help_text=gettext_lazy("Members homed at these stores."))
    variants = VariantSerializer(
        many=True, required=False,
        help_text=gettext_lazy("Experiment arms; their weights and control_pct add up to 100. "
                               "Fixed once members are enrolled."),
    )

    class Meta:
        model = Campaign
        fields = ["id", "name", "description", "status", "trigger", "trigger_stage", "trigger_days",
                  "trigger_live_code", "trigger_survey", "schedule", "schedule_day", "segment", "audience_stages",
                  "audience_tags", "audience_stores", "reentry_days", "exit_on_purchase", "exit_on_reply", "variants",
                  "control_pct", "steps", "created_at", "updated_at"]
        read_only_fields = ["status", "created_at", "updated_at"]

    def run_validation(self, data=serializers.empty):
        try:
            return super().run_validation(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(field_paths(exc.detail)) from None

    def _merged(self, attrs):
        """The campaign as it would be: the stored values under what this request changes."""
        instance = self.instance
        merged = {}
        for name in FORM_FIELDS + ("audience_stages", "audience_tags", "audience_stores", "variants"):
            if name in attrs:
                merged[name] = attrs[name]
            elif instance is not None:
                merged[name] = getattr(instance, name)
            else:
                merged[name] = Campaign._meta.get_field(name).get_default()
        return merged

    def validate(self, attrs):
        merged = self._merged(attrs)
        tenant = self.context["tenant"]
        variants = merged.get("variants") or []
        keys = [v["key"] for v in variants]
        errors = {
            f"variants[{index}].key": [_("The key %(key)s is used twice.") % {"key": key}]
            for index, key in enumerate(keys) if key in keys[:index]
        }
        data = {name: _form_value(merged.get(name)) for name in FORM_FIELDS}
        data.update(
            status=self.instance.status if self.instance else Campaign.Status.DRAFT,
            audience_stages=list(merged.get("audience_stages") or []),
            audience_tags=list(merged.get("audience_tags") or []),
            audience_stores=list(merged.get("audience_stores") or []),
            variants_text="\n".join(f"{v['key']} {v['weight']} {v.get('label', '')}".strip() for v in variants),
        )
        form = CampaignForm(data=data, instance=Campaign(tenant=tenant))
        if not form.is_valid():
            errors.update(_form_errors(form, {"variants_text": "variants"}))
        for index, step in enumerate(attrs.get("steps") or []):
            step_form = StepForm(
                data={name: _form_value(step.get(name, Step._meta.get_field(name).get_default()))
                      for name in STEP_FORM_FIELDS},
                instance=Step(tenant=tenant),
            )
            if not step_form.is_valid():
                errors.update(_form_errors(step_form, prefix=f"steps[{index}]"))
            elif step.get("variant") and step["variant"] not in keys:
                errors[f"steps[{index}].variant"] = [
                    _("No variant %(key)s in this campaign.") % {"key": step["variant"]}
                ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class GuideTaskSerializer(serializers.ModelSerializer):
    member_name = serializers.CharField(source="member.name", read_only=True)

    class Meta:
        model = GuideTask
        fields = ["id", "campaign", "member", "member_name", "guide", "store", "script", "coupon", "status",
                  "skip_reason", "created_at", "due_at", "snoozed_until", "done_at"]
        read_only_fields = fields


class OutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[(o.value, o.label) for o in OUTCOMES])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "channel", "recipient", "body", "status", "attempts", "next_attempt_at", "last_error",
                  "provider_id", "idempotency_key", "member", "campaign", "step", "created_at", "sent_at"]
        read_only_fields = fields
