import json

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Segment, Tag, TagGroup


class RulesField(forms.CharField):
    """A condition tree, edited by the builder and sent as JSON."""

    widget = forms.HiddenInput

    def to_python(self, value):
        value = super().to_python(value)
        if value in ("", None):
            return None
        if len(value) > 200_000:
            raise forms.ValidationError(_("The rules are too long."))
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise forms.ValidationError(_("The rules are not valid JSON.")) from None

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return value


class TagGroupForm(forms.ModelForm):
    class Meta:
        model = TagGroup
        fields = ["name", "kind", "exclusive", "description", "position"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        qs = TagGroup.objects.filter(name=name)
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise forms.ValidationError(_("A tag group with this name already exists."))
        return name


class TagForm(forms.ModelForm):
    rule = RulesField(required=False, label=_("Rule"))

    class Meta:
        model = Tag
        fields = ["name", "colour", "description", "position"]
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, group, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group

    def clean_name(self):
        name = self.cleaned_data["name"]
        qs = Tag.objects.filter(group=self.group, name=name)
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise forms.ValidationError(_("This group already has a tag with this name."))
        return name


class SegmentForm(forms.ModelForm):
    rules = RulesField(label=_("Rules"))

    class Meta:
        model = Segment
        fields = ["name", "description"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        qs = Segment.objects.filter(name=name)
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise forms.ValidationError(_("A segment with this name already exists."))
        return name


class ApplyTagsForm(forms.Form):
    add = forms.ModelMultipleChoiceField(queryset=Tag.objects.none(), required=False, label=_("Add tags"))
    remove = forms.ModelMultipleChoiceField(queryset=Tag.objects.none(), required=False, label=_("Remove tags"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        manual = Tag.objects.filter(group__kind=TagGroup.Kind.MANUAL).select_related("group").order_by(
            "group__position", "group__name", "position", "name"
        )
        for name in ("add", "remove"):
            self.fields[name].queryset = manual
            self.fields[name].label_from_instance = lambda tag: f"{tag.group.name} · {tag.name}"

    def clean(self):
        data = super().clean()
        if not data.get("add") and not data.get("remove"):
            raise forms.ValidationError(_("Choose tags to add or remove."))
        return data
