from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import Member, normalise_mobile
from scrm.models import Store

from .models import CouponTemplate


class CouponTemplateForm(forms.ModelForm):
    categories = forms.CharField(
        label=_("Categories"), required=False, help_text=_("Comma-separated; empty means every category."),
    )

    class Meta:
        model = CouponTemplate
        fields = [
            "name", "type", "description", "amount", "threshold", "discount_rate", "discount_cap", "gift",
            "validity", "valid_from", "valid_until", "valid_days", "total_stock", "per_member_limit",
            "stores", "categories", "active",
        ]
        widgets = {
            "stores": forms.CheckboxSelectMultiple,
            "valid_from": forms.DateInput(attrs={"type": "date"}),
            "valid_until": forms.DateInput(attrs={"type": "date"}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stores"].queryset = Store.objects.filter(active=True)
        if self.instance.pk:
            self.initial["categories"] = ", ".join(self.instance.categories)

    def clean_categories(self):
        raw = self.cleaned_data.get("categories") or ""
        return [part.strip() for part in raw.replace("，", ",").split(",") if part.strip()]


class IssueForm(forms.Form):
    """Who gets a coupon: members by external id or mobile, one per line."""

    members = forms.CharField(
        label=_("Members"), widget=forms.Textarea(attrs={"rows": 6, "placeholder": "M000123\n13800138000"}),
        help_text=_("One external id or mobile per line, at most 1,000."),
    )

    def clean_members(self):
        lines = [line.strip() for line in self.cleaned_data["members"].splitlines() if line.strip()]
        if len(lines) > 1000:
            raise forms.ValidationError(_("At most 1,000 lines; this has %(n)d.") % {"n": len(lines)})
        mobiles = {}
        for line in lines:
            try:
                mobile = normalise_mobile(line)
            except ValueError:
                mobile = ""
            if mobile and len(mobile) == 11:
                mobiles[mobile] = line
        by_external = dict(Member.objects.filter(external_id__in=lines).values_list("external_id", "pk"))
        by_mobile = dict(Member.objects.filter(mobile__in=list(mobiles)).values_list("mobile", "pk"))
        found = {line: by_external[line] for line in lines if line in by_external}
        found.update({line: by_mobile[mobile] for mobile, line in mobiles.items() if mobile in by_mobile})
        missing = [line for line in lines if line not in found]
        if missing:
            raise forms.ValidationError(
                _("No member with external id or mobile: %(lines)s.") % {"lines": ", ".join(missing[:10])}
            )
        return sorted(set(found.values()))


class RedeemForm(forms.Form):
    code = forms.CharField(
        label=_("Coupon code"), max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "placeholder": "ABCDE-FGHJK"}),
    )
    order_external_id = forms.CharField(label=_("Order number"), max_length=64)
    amount = forms.DecimalField(
        label=_("Order amount (¥)"), max_digits=12, decimal_places=2, min_value=0,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01"}),
    )
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False)
    categories = forms.CharField(
        label=_("Categories in the order"), required=False, help_text=_("Only for coupons limited to some categories."),
    )

    def __init__(self, *args, staff=None, **kwargs):
        super().__init__(*args, **kwargs)
        stores = Store.objects.filter(active=True)
        if staff is not None and not staff.sees_all_members:
            stores = stores.filter(pk__in=staff.stores.all())
        self.fields["store"].queryset = stores
        if staff is not None and not self.is_bound:
            first = staff.stores.filter(active=True).first()
            if first is not None:
                self.initial["store"] = first.pk

    def clean_categories(self):
        raw = self.cleaned_data.get("categories") or ""
        return [part.strip() for part in raw.replace("，", ",").split(",") if part.strip()]
