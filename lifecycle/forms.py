from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.models import Staff, Store

from .models import RULE_DEFAULTS, StageRules
from .services import validate_rules

PERIODS = [(7, _("Last 7 days")), (30, _("Last 30 days")), (90, _("Last 90 days")), (365, _("Last 365 days"))]


class LifecycleFilterForm(forms.Form):
    """The lifecycle page's filters: a period of local days and a store or guide the viewer may see."""

    days = forms.TypedChoiceField(label=_("Period"), choices=PERIODS, coerce=int, required=False, empty_value=30, initial=30)
    store_id = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False, empty_label=_("All stores"))
    guide_id = forms.ModelChoiceField(label=_("Guide"), queryset=Staff.objects.none(), required=False, empty_label=_("All guides"))

    def __init__(self, *args, staff, **kwargs):
        super().__init__(*args, **kwargs)
        stores = Store.objects.order_by("code")
        guides = Staff.objects.filter(role=Staff.Role.GUIDE).order_by("name")
        if staff.role == Staff.Role.GUIDE:
            del self.fields["guide_id"]
            stores = stores.filter(pk__in=staff.stores.values("pk"))
        elif not staff.sees_all_members:
            stores = stores.filter(pk__in=staff.stores.values("pk"))
            guides = guides.filter(stores__in=staff.stores.values("pk")).distinct()
        self.fields["store_id"].queryset = stores
        if "guide_id" in self.fields:
            self.fields["guide_id"].queryset = guides

    def period(self, today):
        days = (self.cleaned_data.get("days") if self.is_bound and self.is_valid() else None) or 30
        return today - timedelta(days=days - 1), today

    def selected(self, name):
        if not (self.is_bound and self.is_valid()):
            return None
        value = self.cleaned_data.get(name)
        return value.pk if value else None


class StageRulesForm(forms.ModelForm):
    class Meta:
        model = StageRules
        fields = list(RULE_DEFAULTS)
        widgets = {field: forms.NumberInput(attrs={"min": 1}) for field in RULE_DEFAULTS}

    def clean(self):
        cleaned = super().clean()
        if all(cleaned.get(f) is not None for f in RULE_DEFAULTS):
            for field, messages in validate_rules({f: cleaned[f] for f in RULE_DEFAULTS}).items():
                for message in messages:
                    self.add_error(field, message)
        return cleaned
