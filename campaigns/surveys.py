"""Surveys: the member's signed link, answering once, the summary per question and the export.

A link is ``/s/<token>/`` where the token is a signed ``[tenant id, survey id, member id, issued
at]``: it needs no login, cannot be altered without the server's key and, when the survey sets
``link_days``, stops working that many days after it was made. Completing a survey records one
``survey_completed`` event and enrols the member in the campaigns that this triggers, so that
their steps (a thank-you coupon) run at once.
"""
import csv
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.translation import gettext as _

from members.models import EventType, Member
from members.services import ingest_events
from scrm.tenancy import tenant_context

from .models import Answer, Campaign, Question, StepRun, Survey, SurveyResponse, Trigger

SALT = "campaigns.survey-link"
TEXT_MAX = 2000
TEXTS_SHOWN = 50


class SurveyError(Exception):
    """Answers the member can fix; ``errors`` maps a question's field name (``q<id>``) to messages."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


class BadLink(Exception):
    """The token was altered, is not ours, or names nothing in its brand."""


class ExpiredLink(Exception):
    pass


def field_name(question):
    return f"q{question.pk}"


# ---------------------------------------------------------------- links

@dataclass(frozen=True)
class Link:
    tenant_id: int
    survey_id: int
    member_id: int
    issued_at: datetime


def make_token(tenant_id, survey_id, member_id, issued_at):
    return signing.Signer(salt=SALT).sign_object([tenant_id, survey_id, member_id, int(issued_at.timestamp())])


def read_token(token):
    """The Link a token carries; BadLink when it was altered or is malformed."""
    try:
        tenant_id, survey_id, member_id, issued = signing.Signer(salt=SALT).unsign_object(token)
        issued_at = datetime.fromtimestamp(int(issued), dt_timezone.utc)
        return Link(int(tenant_id), int(survey_id), int(member_id), issued_at)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadLink from None


def survey_link(tenant_id, survey_id, member_id, issued_at):
    """The member's absolute link (SITE_URL + /s/<token>/), as it goes into a message or a script."""
    path = reverse("survey_public:answer", args=[make_token(tenant_id, survey_id, member_id, issued_at)])
    return settings.SITE_URL.rstrip("/") + path


def check_expiry(survey, link, as_of):
    if survey.link_days and as_of > link.issued_at + timedelta(days=survey.link_days):
        raise ExpiredLink


def step_script(step):
    """A survey step's text always carries the link, even when the operator left it out."""
    text = (step.script or "").strip() or _("{name}, we would love to hear from you. It takes a minute: {survey_link}")
    return text if "{survey_link}" in text else f"{text} {{survey_link}}"


# ---------------------------------------------------------------- answering

def answer_errors(questions, answers):
    """{field name: [message]} for missing required answers, options not offered and overlong text."""
    errors = {}
    for question in questions:
        value = answers.get(field_name(question))
        values = value if isinstance(value, (list, tuple)) else ([value] if value not in (None, "") else [])
        values = [v for v in values if v not in (None, "")]
        blank = not values or (question.kind == Question.Kind.TEXT and not str(values[0]).strip())
        if blank and question.required:
            errors[field_name(question)] = [_("Please answer this question.")]
        elif question.kind == Question.Kind.TEXT:
            if values and len(str(values[0])) > TEXT_MAX:
                errors[field_name(question)] = [_("Please keep it under %(n)d characters.") % {"n": TEXT_MAX}]
        elif question.kind == Question.Kind.SINGLE and len(values) > 1:
            errors[field_name(question)] = [_("Choose one option.")]
        elif any(v not in question.choices for v in values):
            errors[field_name(question)] = [_("Choose one of the options shown.")]
    return errors


def _answer_rows(tenant, survey, response, questions, answers):
    rows = []
    for question in questions:
        value = answers.get(field_name(question))
        if question.kind == Question.Kind.TEXT:
            text = str(value or "").strip()
            if text:
                rows.append(Answer(tenant=tenant, response=response, question=question, survey=survey, text=text))
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for choice in dict.fromkeys(v for v in values if v):
            rows.append(Answer(tenant=tenant, response=response, question=question, survey=survey, choice=choice))
    return rows


def complete_survey(tenant, survey, member, answers, as_of):
    """Record a member's answers once. Returns (response, created): a second submission changes
    nothing and returns the first response; the first wins, so the summary counts each member once.

    ``answers`` maps ``q<question id>`` to a choice, a list of choices or a text. On completion the
    member gets one survey_completed event and enters the campaigns it triggers (after commit)."""
    existing = SurveyResponse.objects.filter(survey=survey, member=member).first()
    if existing is not None:
        return existing, False
    if survey.status != Survey.Status.OPEN:
        raise SurveyError({"__all__": [_("This survey is not open for answers.")]})
    questions = list(survey.questions.all())
    errors = answer_errors(questions, answers)
    if errors:
        raise SurveyError(errors)
    with transaction.atomic():
        try:
            with transaction.atomic():
                response = SurveyResponse.objects.create(
                    tenant=tenant, survey=survey, member=member, submitted_at=as_of
                )
        except IntegrityError:
            # A concurrent submission of the same member won the race: theirs is the answer.
            return SurveyResponse.objects.get(survey=survey, member=member), False
        Answer.objects.bulk_create(_answer_rows(tenant, survey, response, questions, answers))
        ingest_events(tenant, [(0, {
            "member_external_id": member.external_id, "type": EventType.SURVEY_COMPLETED, "occurred_at": as_of,
            "external_id": f"survey:{survey.pk}:member:{member.pk}",
            "properties": {"survey_id": survey.pk, "response_id": response.pk, "survey": survey.name},
        })])
        tenant_id, survey_id, member_id = tenant.pk, survey.pk, member.pk
        transaction.on_commit(lambda: after_completion(tenant_id, survey_id, [member_id], as_of))
    return response, True


def enrol_on_completion(tenant, survey_id, member_ids, as_of):
    """Enrol members who completed ``survey_id`` in the active survey_completed campaigns for any
    survey or this one. Returns {campaign id: enrolled}."""
    from .services import enrol_members

    enrolled = {}
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE, trigger=Trigger.SURVEY_COMPLETED).filter(
        Q(trigger_survey__isnull=True) | Q(trigger_survey_id=survey_id)
    ).select_related("tenant", "segment")
    for campaign in campaigns:
        with transaction.atomic():
            enrolled[campaign.pk] = enrol_members(campaign, Member.objects.filter(pk__in=member_ids), as_of)
    return enrolled


def after_completion(tenant_id, survey_id, member_ids, as_of):
    """Enrol, then run the steps of the campaigns that took someone in: the reward goes out now."""
    from .tasks import run_due_steps

    with tenant_context(tenant_id) as tenant:
        enrolled = enrol_on_completion(tenant, survey_id, member_ids, as_of)
    campaign_ids = [pk for pk, n in enrolled.items() if n]
    if campaign_ids:
        run_due_steps.delay(tenant_id, as_of.isoformat(), campaign_ids=campaign_ids)
    return enrolled


# ---------------------------------------------------------------- results

def reach(survey):
    """Members a campaign step sent this survey to."""
    done = StepRun.objects.filter(step__survey=survey, status=StepRun.Status.DONE)
    return done.values("member_id").distinct().count()


def summary(survey, texts_shown=TEXTS_SHOWN):
    """Per question, in order: how many answered, and per choice the count and its share of those who
    answered the question (a multiple-choice question's shares can add up to more than 100%); for a
    text question the latest answers. Choices no longer offered still count, listed last."""
    questions = list(survey.questions.all())
    responses = SurveyResponse.objects.filter(survey=survey).count()
    answered = dict(
        Answer.objects.filter(survey=survey).values("question_id").annotate(n=Count("response_id", distinct=True))
        .values_list("question_id", "n")
    )
    counts = {}
    for question_id, choice, n in (
        Answer.objects.filter(survey=survey).exclude(choice="").values("question_id", "choice")
        .annotate(n=Count("pk")).values_list("question_id", "choice", "n")
    ):
        counts.setdefault(question_id, {})[choice] = n
    rows = []
    for question in questions:
        n = answered.get(question.pk, 0)
        row = {"question": question, "id": question.pk, "text": question.text, "kind": question.kind,
               "answered": n, "skipped": responses - n, "choices": [], "texts": [], "text_count": 0}
        if question.has_choices:
            seen = counts.get(question.pk, {})
            offered = list(question.choices) + sorted(c for c in seen if c not in question.choices)
            row["choices"] = [
                {"choice": choice, "count": seen.get(choice, 0), "share": (seen.get(choice, 0) / n) if n else 0.0,
                 "offered": choice in question.choices}
                for choice in offered
            ]
        else:
            row["text_count"] = n
            row["texts"] = list(
                Answer.objects.filter(question=question).exclude(text="").select_related("response__member")
                .order_by("-response__submitted_at", "-pk")[:texts_shown]
            )
        rows.append(row)
    return {"responses": responses, "questions": rows}


def _cell(value):
    """Text a spreadsheet would run as a formula is kept as text."""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


class _Echo:
    def write(self, value):
        return value


def export_rows(survey, tenant):
    """CSV lines of every response: the member, the time in the tenant's zone, one column per
    question (several choices joined by "; "). Read in chunks, so a large survey streams."""
    writer = csv.writer(_Echo())
    questions = list(survey.questions.all())
    yield "\ufeff" + writer.writerow(
        [_("response id"), _("member external id"), _("member name"), _("submitted at")] + [q.text for q in questions]
    )
    responses = (
        SurveyResponse.objects.filter(survey=survey).select_related("member").prefetch_related("answers")
        .order_by("submitted_at", "pk")
    )
    for response in responses.iterator(chunk_size=1000):
        by_question = {}
        for answer in response.answers.all():
            by_question.setdefault(answer.question_id, []).append(answer.choice or answer.text)
        yield writer.writerow([
            response.pk, _cell(response.member.external_id), _cell(response.member.name),
            response.submitted_at.astimezone(tenant.zone).strftime("%Y-%m-%d %H:%M"),
        ] + [_cell("; ".join(by_question.get(q.pk, []))) for q in questions])
