from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms import BaseInlineFormSet, inlineformset_factory
from django.utils.translation import gettext_lazy as _

from coupons.models import CouponTemplate
from lifecycle.models import Stage
from scrm.models import Staff, Store
from tagging.models import Segment, Tag

from .models import DAYS_TRIGGERS, Action, Campaign, OutreachSettings, Schedule, Step, Survey, Trigger
from .services import CONTROL, script_errors


class CampaignForm(forms.ModelForm):
    audience_stages = forms.MultipleChoiceField(
        label=_("Stages"), choices=Stage.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    audience_tags = forms.ModelMultipleChoiceField(label=_("Has any of the tags"), queryset=Tag.objects.all(), required=False)
    audience_stores = forms.ModelMultipleChoiceField(label=_("Home store"), queryset=Store.objects.all(), required=False)
    variants_text = forms.CharField(
        label=_("Variants"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line: key weight label, e.g. “A 45 ¥30 off”. Weights and the control add up to 100."),
    )

    class Meta:
        model = Campaign
        fields = ["name", "description", "status", "trigger", "trigger_stage", "trigger_days", "schedule",
                  "schedule_day", "segment", "reentry_days", "exit_on_purchase", "exit_on_reply", "control_pct",
                  "trigger_survey"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.all()
        self.fields["trigger_survey"].queryset = Survey.objects.all()
        if self.instance.pk:
            self.initial.setdefault("audience_stages", self.instance.audience_stages)
            self.initial.setdefault("audience_tags", self.instance.audience_tags)
            self.initial.setdefault("audience_stores", self.instance.audience_stores)
            self.initial.setdefault("variants_text", "\n".join(
                f"{v['key']} {v['weight']} {v.get('label', '')}".strip() for v in self.instance.variants
            ))

    def clean_variants_text(self):
        variants = []
        for number, line in enumerate((self.cleaned_data.get("variants_text") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=2)
            try:
                weight = int(parts[1])
            except (IndexError, ValueError):
                raise ValidationError(_("Line %(n)d: write a key, then a whole-number weight.") % {"n": number}) from None
            if parts[0] == CONTROL or weight < 1:
                raise ValidationError(_("Line %(n)d: “control” is reserved and weights are at least 1.") % {"n": number})
            if parts[0] in {v["key"] for v in variants}:
                raise ValidationError(_("Line %(n)d: the key %(key)s is used twice.") % {"n": number, "key": parts[0]})
            variants.append({"key": parts[0][:20], "weight": weight, "label": parts[2] if len(parts) > 2 else ""})
        return variants

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        if trigger == Trigger.STAGE_ENTERED and not data.get("trigger_stage"):
            self.add_error("trigger_stage", _("Which stage starts the campaign?"))
        if trigger in DAYS_TRIGGERS and not data.get("trigger_days"):
            self.add_error("trigger_days", _("This trigger needs a number of days."))
        if trigger == Trigger.SCHEDULE:
            if not data.get("schedule"):
                self.add_error("schedule", _("Choose how often the campaign runs."))
            elif data["schedule"] in (Schedule.WEEKLY, Schedule.MONTHLY) and data.get("schedule_day") is None:
                self.add_error("schedule_day", _("Choose the day it runs on."))
            elif data["schedule"] == Schedule.WEEKLY and (data.get("schedule_day") or 0) > 6:
                self.add_error("schedule_day", _("Weekly: 0 (Monday) to 6 (Sunday)."))
        variants = data.get("variants_text") or []
        total = sum(v["weight"] for v in variants) + (data.get("control_pct") or 0)
        if variants and total != 100:
            self.add_error("variants_text", _("Variant weights and the control add up to %(n)d, not 100.") % {"n": total})
        return data

    def save(self, commit=True):
        campaign = super().save(commit=False)
        campaign.audience_stages = list(self.cleaned_data["audience_stages"])
        campaign.audience_tags = [t.pk for t in self.cleaned_data["audience_tags"]]
        campaign.audience_stores = [s.pk for s in self.cleaned_data["audience_stores"]]
        campaign.variants = self.cleaned_data["variants_text"]
        if commit:
            campaign.save()
        return campaign


class StepForm(forms.ModelForm):
    class Meta:
        model = Step
        fields = ["delay_days", "action", "variant", "channel", "script", "coupon_template", "tag", "due_hours",
                  "promotional", "skip_if_bought", "survey"]
        widgets = {"script": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["coupon_template"].queryset = CouponTemplate.objects.filter(active=True)
        self.fields["tag"].queryset = Tag.objects.filter(group__kind="manual").select_related("group")
        self.fields["survey"].queryset = Survey.objects.all()
        self.fields["survey"].help_text = _("Put {survey_link} in the script where the member's link goes.")

    def clean(self):
        data = super().clean()
        action = data.get("action")
        for message in script_errors(data.get("script")):
            self.add_error("script", message)
        if action == Action.MESSAGE and not data.get("channel"):
            self.add_error("channel", _("A message needs a channel."))
        if action in (Action.GUIDE_TASK, Action.MESSAGE) and not (data.get("script") or "").strip():
            self.add_error("script", _("Write the script or message."))
        if action == Action.COUPON and not data.get("coupon_template"):
            self.add_error("coupon_template", _("Choose the coupon to issue."))
        if action in (Action.ADD_TAG, Action.REMOVE_TAG) and not data.get("tag"):
            self.add_error("tag", _("Choose the tag."))
        if action == Action.SURVEY and not data.get("channel"):
            self.add_error("channel", _("A survey is sent through a channel."))
        if not data.get("survey") and (action == Action.SURVEY or "{survey_link}" in (data.get("script") or "")):
            self.add_error("survey", _("Choose the survey the link opens."))
        return data


class BaseStepFormSet(BaseInlineFormSet):
    def save_new(self, form, commit=True):
        form.instance.tenant = self.instance.tenant
        return super().save_new(form, commit)

    def clean(self):
        super().clean()
        variants = {v["key"] for v in (self.instance.variants or [])}
        for position, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            variant = form.cleaned_data.get("variant")
            if variant and variant not in variants:
                form.add_error("variant", _("No variant %(key)s in this campaign.") % {"key": variant})
            form.instance.position = position


StepFormSet = inlineformset_factory(
    Campaign, Step, form=StepForm, formset=BaseStepFormSet, extra=1, can_delete=True,
)


def _https_by_default(db_field, **kwargs):
    if isinstance(db_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


class OutreachSettingsForm(forms.ModelForm):
    """Secrets are never sent back to the browser: left blank, the stored one is kept."""

    formfield_callback = _https_by_default

    class Meta:
        model = OutreachSettings
        fields = ["max_touches", "per_days", "quiet_start", "quiet_end", "dont_disturb_days", "attribution_days",
                  "commission_rate",
                  "webhook_url", "webhook_secret", "email_from", "sms_url", "sms_account", "sms_secret",
                  "sms_signature", "wecom_api_base", "wecom_corp_id", "wecom_secret", "wecom_callback_token",
                  "wecom_aes_key", "wecom_agent_id"]
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            **{name: forms.PasswordInput(render_value=False) for name in OutreachSettings.SECRET_FIELDS},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored = {name: getattr(self.instance, name) for name in OutreachSettings.SECRET_FIELDS}
        self._stored_rate = self.instance.commission_rate
        self.fields["commission_rate"].required = False
        for name in OutreachSettings.SECRET_FIELDS:
            if self._stored[name]:
                self.fields[name].help_text = _("A secret is stored. Leave blank to keep it.")

    def clean(self):
        data = super().clean()
        for name in OutreachSettings.SECRET_FIELDS:
            if not data.get(name):
                data[name] = self._stored[name]
        if data.get("commission_rate") is None:
            data["commission_rate"] = self._stored_rate
        return data


class HandoverForm(forms.Form):
    leaving = forms.ModelChoiceField(label=_("Leaving guide"), queryset=Staff.objects.none())
    to_guide = forms.ModelChoiceField(label=_("Hand members and open tasks to"), queryset=Staff.objects.none())

    def __init__(self, *args, guides=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["leaving"].queryset = guides
        self.fields["to_guide"].queryset = guides.filter(active=True)

