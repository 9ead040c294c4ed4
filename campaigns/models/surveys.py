"""Surveys sent by campaign steps (e.g. the farewell survey for churned members).

A member answers a survey once: ``SurveyResponse`` is unique per (tenant, survey, member), so a
second submission, a double tap or a retried request records nothing twice. Each chosen option
is one ``Answer`` row (a multiple-choice question gives several), so the per-question summary is
one GROUP BY, whatever the number of answers.
"""
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import Staff
from scrm.tenancy import TenantOwned

__all__ = ["Survey", "Question", "SurveyResponse", "Answer"]


class Survey(TenantOwned):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open for answers")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=120)
    intro = models.TextField(_("introduction"), blank=True, help_text=_("Shown above the questions."))
    thanks = models.TextField(
        _("thank-you text"), blank=True, help_text=_("Shown after the member has answered."),
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    link_days = models.PositiveSmallIntegerField(
        _("links valid for (days)"), null=True, blank=True, default=30, validators=[MinValueValidator(1)],
        help_text=_("Empty: a member's link never expires."),
    )
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "status"], name="survey_tenant_status")]

    def __str__(self):
        return self.name


class Question(TenantOwned):
    class Kind(models.TextChoices):
        SINGLE = "single", _("Single choice")
        MULTIPLE = "multiple", _("Multiple choice")
        TEXT = "text", _("Text")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    text = models.CharField(_("question"), max_length=300)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.SINGLE)
    required = models.BooleanField(_("required"), default=True)
    choices = models.JSONField(_("choices"), default=list, blank=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["tenant", "survey", "position"], name="question_tenant_survey")]

    def __str__(self):
        return self.text

    @property
    def has_choices(self):
        return self.kind != self.Kind.TEXT


class SurveyResponse(TenantOwned):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member"))
    submitted_at = models.DateTimeField(_("submitted at"))

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        ordering = ["-submitted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "survey", "member"], name="surveyresponse_once_per_member")
        ]
        indexes = [models.Index(fields=["tenant", "survey", "submitted_at"], name="surveyresponse_survey_time")]


class Answer(TenantOwned):
    """One chosen option (``choice``) or one text answer (``text``) of a response to a question."""

    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="+")
    choice = models.CharField(_("choice"), max_length=200, blank=True)
    text = models.TextField(_("answer"), blank=True)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "response", "question", "choice"], name="answer_unique_choice")
        ]
        indexes = [models.Index(fields=["tenant", "survey", "question", "choice"], name="answer_survey_question")]
