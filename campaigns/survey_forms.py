from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseInlineFormSet, inlineformset_factory
from django.utils.translation import gettext_lazy as _

from .models import Question, Survey
from .surveys import TEXT_MAX, field_name

CHOICE_MAX = 200


class SurveyForm(forms.ModelForm):
    class Meta:
        model = Survey
        fields = ["name", "status", "intro", "thanks", "link_days"]
        widgets = {"intro": forms.Textarea(attrs={"rows": 3}), "thanks": forms.Textarea(attrs={"rows": 3})}


class QuestionForm(forms.ModelForm):
    choices_text = forms.CharField(
        label=_("Choices"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line."),
    )

    class Meta:
        model = Question
        fields = ["text", "kind", "required", "position"]
        widgets = {"position": forms.HiddenInput(attrs={"data-position": ""})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False
        if self.instance.pk:
            self.initial.setdefault("choices_text", "\n".join(self.instance.choices))

    def clean(self):
        data = super().clean()
        choices = [line.strip() for line in (data.get("choices_text") or "").splitlines() if line.strip()]
        if data.get("kind") == Question.Kind.TEXT:
            choices = []
        elif data.get("kind"):
            if len(set(choices)) < 2:
                self.add_error("choices_text", _("A choice question needs at least two choices."))
            long = [c for c in choices if len(c) > CHOICE_MAX]
            if long:
                self.add_error("choices_text", _("A choice is at most %(n)d characters.") % {"n": CHOICE_MAX})
            twice = sorted({c for c in choices if choices.count(c) > 1})
            if twice:
                self.add_error("choices_text", _("Listed twice: %(choices)s.") % {"choices": ", ".join(twice)})
        self.instance.choices = choices
        return data


class BaseQuestionFormSet(BaseInlineFormSet):
    def save_new(self, form, commit=True):
        form.instance.tenant = self.instance.tenant
        return super().save_new(form, commit)

    def clean(self):
        super().clean()
        kept = [
            (index, form) for index, form in enumerate(self.forms)
            if hasattr(form, "cleaned_data") and form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            raise ValidationError(_("Add at least one question."))
        # The page numbers the questions as they are arranged; without script the form order holds.
        def place(pair):
            index, form = pair
            position = form.cleaned_data.get("position")
            return (position is None, position or 0, index)

        kept.sort(key=place)
        for position, (_index, form) in enumerate(kept):
            form.instance.position = position


QuestionFormSet = inlineformset_factory(
    Survey, Question, form=QuestionForm, formset=BaseQuestionFormSet, extra=0, can_delete=True,
)


class AnswerForm(forms.Form):
    """The member's page: one field per question, named ``q<id>``; messages sit beside the question."""

    def __init__(self, survey, questions, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.survey = survey
        self.questions = questions
        for question in questions:
            messages = {"required": _("Please answer this question."),
                        "invalid_choice": _("Choose one of the options shown.")}
            options = [(choice, choice) for choice in question.choices]
            if question.kind == Question.Kind.SINGLE:
                field = forms.ChoiceField(choices=options, widget=forms.RadioSelect, error_messages=messages)
            elif question.kind == Question.Kind.MULTIPLE:
                field = forms.MultipleChoiceField(
                    choices=options, widget=forms.CheckboxSelectMultiple, error_messages=messages
                )
            else:
                field = forms.CharField(
                    max_length=TEXT_MAX, widget=forms.Textarea(attrs={"rows": 3}), error_messages=messages
                )
            field.required = question.required
            field.label = question.text
            self.fields[field_name(question)] = field

    def rows(self):
        """(question, bound field) in order, for the template."""
        return [(question, self[field_name(question)]) for question in self.questions]
