"""Forms of the live-code pages: the code itself and the list's filter."""
from django import forms
from django.utils.translation import gettext_lazy as _

from coupons.models import CouponTemplate
from scrm.models import Staff, Store
from tagging.models import Tag

from .models import LiveCode

# Staff who can own customers and so can stand behind a code.
GUIDE_ROLES = (Staff.Role.GUIDE, Staff.Role.STORE_MANAGER)


class OrderedGuidesField(forms.ModelMultipleChoiceField):
    """Guides in the order they were submitted: the round-robin order of the pool."""

    def clean(self, value):
        chosen = super().clean(value)
        by_pk = {str(guide.pk): guide for guide in chosen}
        ordered, seen = [], set()
        for raw in value or []:
            key = str(raw)
            if key in by_pk and key not in seen:
                ordered.append(by_pk[key])
                seen.add(key)
        return ordered


class LiveCodeForm(forms.ModelForm):
    pool = OrderedGuidesField(
        label=_("Guides behind the code"), queryset=Staff.objects.none(), required=False,
        help_text=_("Tick the guides and put them in order: round-robin takes them in this order."),
    )

    class Meta:
        model = LiveCode
        fields = ["name", "channel_type", "store", "status", "rule", "fixed_guide", "backup_guide", "daily_cap",
                  "work_start", "work_end", "welcome_message", "welcome_coupon", "tags", "reassign_existing",
                  "starts_at", "ends_at", "cost"]
        widgets = {
            "work_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "work_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "welcome_message": forms.Textarea(attrs={"rows": 4}),
            "tags": forms.CheckboxSelectMultiple,
            "cost": forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
        }
        help_texts = {
            "welcome_message": "",
            "cost": _("What printing and placing the code cost, in ¥: gives the cost per join."),
            "starts_at": _("Empty: active from now."),
            "ends_at": _("Empty: no end."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        guides = Staff.objects.filter(role__in=GUIDE_ROLES).prefetch_related("stores").order_by("name")
        if self.instance.pk:
            current = list(self.instance.pool.order_by("position", "pk").values_list("guide_id", flat=True))
            self.initial.setdefault("pool", current)
            # A guide who left stays listed while still in the pool, so saving does not drop them silently.
            guides = guides.filter(active=True) | Staff.objects.filter(pk__in=current)
        else:
            guides = guides.filter(active=True)
        self.fields["pool"].queryset = guides.distinct().order_by("name")
        active_guides = Staff.objects.filter(role__in=GUIDE_ROLES, active=True).order_by("name")
        self.fields["fixed_guide"].queryset = active_guides
        self.fields["backup_guide"].queryset = active_guides
        self.fields["store"].queryset = Store.objects.filter(active=True).order_by("code")
        self.fields["welcome_coupon"].queryset = CouponTemplate.objects.filter(active=True).order_by("name")
        self.fields["tags"].queryset = Tag.objects.filter(group__kind="manual").select_related("group").order_by(
            "group__name", "position", "name"
        )
        self.fields["cost"].widget.attrs.setdefault("placeholder", "0.00")

    def pool_choices(self):
        """(guide, ticked, store names) in the order to show: the pool first, in its order, then the rest."""
        submitted = self["pool"].value() or []
        order = [str(pk) for pk in submitted]
        guides = list(self.fields["pool"].queryset)
        rank = {pk: i for i, pk in enumerate(order)}
        guides.sort(key=lambda g: (rank.get(str(g.pk), len(rank)), g.name))
        return [(g, str(g.pk) in rank, ", ".join(s.name for s in g.stores.all())) for g in guides]

    def clean(self):
        data = super().clean()
        rule = data.get("rule")
        pool = data.get("pool") or []
        if rule == LiveCode.Rule.FIXED:
            if not data.get("fixed_guide"):
                self.add_error("fixed_guide", _("Choose the guide who takes every join."))
        elif rule and not pool:
            self.add_error("pool", _("Tick at least one guide for this rule."))
        start, end = data.get("work_start"), data.get("work_end")
        if (start is None) != (end is None):
            self.add_error("work_end" if end is None else "work_start", _("Give both ends of the working hours, or neither."))
        elif start is not None and start == end:
            self.add_error("work_end", _("The working hours end when they start."))
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            self.add_error("ends_at", _("The end must be after the start."))
        cost = data.get("cost")
        if cost is not None and cost < 0:
            self.add_error("cost", _("The cost cannot be negative."))
        return data


class LiveCodeFilterForm(forms.Form):
    """The list's filter widgets; LiveCodeFilterSet applies the same field names."""

    q = forms.CharField(label=_("Name or code"), required=False, max_length=120)
    store_id = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False,
                                      empty_label=_("All stores"))
    channel_type = forms.ChoiceField(label=_("Channel"), required=False,
                                     choices=[("", _("All channels")), *LiveCode.ChannelType.choices])
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("In use")), *LiveCode.Status.choices])

    def __init__(self, *args, stores=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store_id"].queryset = stores if stores is not None else Store.objects.order_by("code")
