from rest_framework import serializers

from .models import Campaign, GuideTask, Message, Step
from .services import OUTCOMES


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = Step
        fields = ["id", "position", "delay_days", "action", "variant", "promotional", "skip_if_bought", "script",
                  "channel", "coupon_template", "tag", "due_hours"]


class CampaignSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "name", "description", "status", "trigger", "trigger_stage", "trigger_days", "schedule",
                  "schedule_day", "segment", "audience_stages", "audience_tags", "audience_stores", "reentry_days",
                  "exit_on_purchase", "exit_on_reply", "variants", "control_pct", "steps", "created_at"]
        read_only_fields = fields


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
