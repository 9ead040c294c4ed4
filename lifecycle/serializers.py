from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from scrm.models import Staff, Store

from .models import RULE_DEFAULTS, LifecycleRun, StageChange, StageRulesVersion
from .services import validate_rules

MAX_PERIOD_DAYS = 731


class PeriodSerializer(serializers.Serializer):
    """Query parameters of the analytics endpoints: local days, inclusive; store and guide ids."""

    since = serializers.DateField(required=False, help_text=_("First local day (default: 29 days before until)."))
    until = serializers.DateField(required=False, help_text=_("Last local day (default: the day of the last run)."))
    store_id = serializers.IntegerField(required=False, min_value=1)
    guide_id = serializers.IntegerField(required=False, min_value=1)

    def __init__(self, *args, today=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def validate(self, attrs):
        until = attrs.get("until") or self.today
        since = attrs.get("since") or until - timedelta(days=29)
        if since > until:
            raise serializers.ValidationError({"since": [_("Must not be after until.")]})
        if (until - since).days >= MAX_PERIOD_DAYS:
            raise serializers.ValidationError({"since": [_("A period may span at most two years.")]})
        if attrs.get("store_id") and not Store.objects.filter(pk=attrs["store_id"]).exists():
            raise serializers.ValidationError({"store_id": [_("No such store.")]})
        if attrs.get("guide_id") and not Staff.objects.filter(pk=attrs["guide_id"]).exists():
            raise serializers.ValidationError({"guide_id": [_("No such guide.")]})
        return {**attrs, "since": since, "until": until}


class StageCountSerializer(serializers.Serializer):
    stage = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()
    warning = serializers.IntegerField(help_text=_("Members of this stage with the churn warning."))
    share = serializers.FloatField()


class RunSerializer(serializers.ModelSerializer):
    changes = serializers.DictField(child=serializers.IntegerField(), help_text=_("Stage changes by from→to; 'new' is a member scored for the first time."))
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = LifecycleRun
        fields = [
            "id", "kind", "status", "as_of", "scheduled_for", "rules_version", "started_at", "finished_at",
            "duration_seconds", "members_scored", "changes_total", "changes", "warnings_raised", "warnings_cleared",
            "fell_back_to_full", "error",
        ]
        read_only_fields = fields


class SummarySerializer(serializers.Serializer):
    as_of = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    warning_total = serializers.IntegerField()
    stages = StageCountSerializer(many=True)
    last_run = RunSerializer(allow_null=True)


class FlowSerializer(serializers.Serializer):
    from_stage = serializers.CharField(source="from")
    to_stage = serializers.CharField(source="to")
    count = serializers.IntegerField()

    def to_representation(self, instance):
        return {"from": instance["from"], "to": instance["to"], "count": instance["count"]}


class TransitionsSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    matrix = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                   help_text=_("matrix[from][to]: members who moved in the period."))
    flows = FlowSerializer(many=True)
    entered = serializers.DictField(child=serializers.IntegerField(), help_text=_("Members scored for the first time, by stage."))
    changes = serializers.IntegerField()
    win_backs = serializers.IntegerField()
    win_back_rate = serializers.FloatField(allow_null=True)
    churned = serializers.IntegerField()
    churn_rate = serializers.FloatField(allow_null=True)
    warnings_raised = serializers.IntegerField()
    warnings_cleared = serializers.IntegerField()


class StageRulesSerializer(serializers.Serializer):
    dormant_after_days = serializers.IntegerField(min_value=1, max_value=3650)
    churn_after_days = serializers.IntegerField(min_value=1, max_value=3650)
    mature_min_orders = serializers.IntegerField(min_value=2, max_value=1000)
    intro_churn_days = serializers.IntegerField(min_value=1, max_value=3650)
    warning_days = serializers.IntegerField(min_value=1, max_value=3650)
    aov_drop_pct = serializers.IntegerField(min_value=1, max_value=100)
    version = serializers.IntegerField(required=False, help_text=_("Send the version you read to refuse overwriting a newer change."))
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_by = serializers.CharField(read_only=True, source="updated_by.name", allow_null=True, default=None)
    defaults = serializers.SerializerMethodField()

    def get_defaults(self, obj) -> dict:
        return dict(RULE_DEFAULTS)

    def validate(self, attrs):
        current = self.context.get("current") or {}
        merged = {**current, **{k: v for k, v in attrs.items() if k in RULE_DEFAULTS}}
        errors = validate_rules(merged)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class StageRulesVersionSerializer(serializers.ModelSerializer):
    changed_by = serializers.CharField(source="changed_by_label")

    class Meta:
        model = StageRulesVersion
        fields = ["version", "values", "previous", "changed_by", "changed_at"]


class DryRunMoveSerializer(serializers.Serializer):
    count = serializers.IntegerField()

    def to_representation(self, instance):
        return {"from": instance["from"], "to": instance["to"], "count": instance["count"]}


class DryRunSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField(allow_null=True)
    members = serializers.IntegerField()
    moved = serializers.IntegerField()
    moves = DryRunMoveSerializer(many=True)
    warnings_raised = serializers.IntegerField()
    warnings_cleared = serializers.IntegerField()


class StageChangeSerializer(serializers.ModelSerializer):
    from_stage = serializers.CharField(help_text=_("The stage before; empty when the member was scored for the first time."))
    to_stage = serializers.CharField()
    rule = serializers.CharField()
    warning_rule = serializers.CharField()

    class Meta:
        model = StageChange
        fields = ["at", "from_stage", "to_stage", "from_warning", "to_warning", "rule", "warning_rule", "metrics", "run"]


class CheckSerializer(serializers.Serializer):
    metric = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    operator = serializers.CharField()
    threshold = serializers.JSONField(allow_null=True)
    parameter = serializers.CharField(allow_null=True)


class WarningExplanationSerializer(serializers.Serializer):
    rule = serializers.CharField()
    text = serializers.CharField()
    compared = CheckSerializer(many=True)


class ExplanationSerializer(serializers.Serializer):
    rule = serializers.CharField()
    rule_label = serializers.CharField()
    text = serializers.CharField()
    compared = CheckSerializer(many=True)
    warning = WarningExplanationSerializer(allow_null=True)
    as_of = serializers.DateTimeField()
    rules = serializers.DictField(child=serializers.IntegerField())


class MemberStageSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    stage = serializers.CharField(allow_null=True)
    stage_label = serializers.CharField(allow_null=True)
    churn_warning = serializers.BooleanField()
    since = serializers.DateTimeField(allow_null=True)
    warning_since = serializers.DateTimeField(allow_null=True)
    as_of = serializers.DateTimeField(allow_null=True)
    explanation = ExplanationSerializer(allow_null=True)
    metrics = serializers.DictField(allow_null=True)
    history = StageChangeSerializer(many=True)
