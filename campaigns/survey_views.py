"""Survey pages: the dashboard (list, builder, results, CSV export, preview) and the member's page
at /s/<token>/, which needs no login: the signed token names the brand, the survey and the member."""
from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Q
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from members.models import Member
from scrm.models import Tenant
from scrm.tenancy import tenant_context
from scrm.views import settings_required

from . import surveys
from .models import Campaign, Survey, SurveyResponse, Trigger
from .survey_forms import AnswerForm, QuestionFormSet, SurveyForm


# ---------------------------------------------------------------- dashboard

@settings_required
def survey_list(request):
    listed = Survey.objects.annotate(
        question_count=Count("questions", distinct=True), response_count=Count("responses", distinct=True)
    ).order_by("-created_at", "-pk")
    return render(request, "campaigns/surveys/list.html", {"surveys": listed, "tab": "surveys"})


@settings_required
def survey_edit(request, pk=None):
    survey = get_object_or_404(Survey, pk=pk) if pk else Survey(tenant=request.tenant, created_by=request.staff)
    # Once members have answered, the questions stay as they were asked, so the results stay comparable.
    locked = bool(survey.pk) and SurveyResponse.objects.filter(survey=survey).exists()
    form = SurveyForm(request.POST or None, instance=survey)
    questions = None if locked else QuestionFormSet(request.POST or None, instance=survey, prefix="questions")
    if request.method == "POST" and form.is_valid() and (locked or questions.is_valid()):
        with transaction.atomic():
            saved = form.save()
            if not locked:
                questions.instance = saved
                questions.save()
        messages.success(request, _("Survey %(name)s saved.") % {"name": saved.name})
        return redirect("campaigns:survey_results", pk=saved.pk)
    return render(request, "campaigns/surveys/form.html", {
        "form": form, "questions": questions, "survey": survey, "locked": locked, "tab": "surveys",
        "asked": list(survey.questions.all()) if locked else [],
    })


def _chart(summary):
    return [
        {"id": row["id"], "labels": [c["choice"] for c in row["choices"]],
         "counts": [c["count"] for c in row["choices"]]}
        for row in summary["questions"] if row["choices"]
    ]


@settings_required
def survey_results(request, pk):
    survey = get_object_or_404(Survey, pk=pk)
    summary = surveys.summary(survey)
    reached = surveys.reach(survey)
    campaigns = Campaign.objects.filter(steps__survey=survey).distinct().order_by("name")
    rewards = Campaign.objects.filter(trigger=Trigger.SURVEY_COMPLETED).filter(
        Q(trigger_survey__isnull=True) | Q(trigger_survey=survey)
    )
    return render(request, "campaigns/surveys/results.html", {
        "survey": survey, "summary": summary, "reached": reached, "tab": "surveys",
        "rate": (summary["responses"] / reached) if reached else None,
        "campaigns": campaigns, "rewards": rewards.order_by("name"), "chart": _chart(summary),
    })


@settings_required
def survey_export(request, pk):
    survey = get_object_or_404(Survey, pk=pk)
    tenant = request.tenant

    def lines():
        # The response streams after the view returns: keep the brand in scope while it does.
        with tenant_context(tenant):
            yield from surveys.export_rows(survey, tenant)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    name = slugify(survey.name) or f"survey-{survey.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}-answers.csv"'
    return response


@settings_required
def survey_preview(request, pk):
    """The member's page as it will look; nothing can be submitted from here."""
    survey = get_object_or_404(Survey, pk=pk)
    questions = list(survey.questions.all())
    return render(request, "survey_public/answer.html", {
        "survey": survey, "brand": request.tenant, "form": AnswerForm(survey, questions), "preview": True,
    })


# ---------------------------------------------------------------- the member's page

def _problem(request, status, title, text, brand=None):
    return render(request, "survey_public/problem.html", {"title": title, "text": text, "brand": brand}, status=status)


def _bad_link(request):
    return _problem(request, 404, _("This link does not work"), _(
        "The link may have been cut short or changed. Please open it again from the message you received."
    ))


def answer(request, token):
    try:
        link = surveys.read_token(token)
    except surveys.BadLink:
        return _bad_link(request)
    tenant = Tenant.objects.filter(pk=link.tenant_id).first()
    if tenant is None:
        return _bad_link(request)
    with tenant_context(tenant):
        survey = Survey.objects.filter(pk=link.survey_id).first()
        member = Member.objects.filter(pk=link.member_id).first()
        if survey is None or member is None:
            return _bad_link(request)
        now = timezone.now()
        if SurveyResponse.objects.filter(survey=survey, member=member).exists():
            return render(request, "survey_public/thanks.html", {"survey": survey, "brand": tenant})
        try:
            surveys.check_expiry(survey, link, now)
        except surveys.ExpiredLink:
            return _problem(request, 410, _("This link has expired"), _(
                "Thank you for your interest. This survey link was valid for %(n)d days."
            ) % {"n": survey.link_days}, tenant)
        if survey.status != Survey.Status.OPEN:
            return _problem(request, 200, _("This survey is closed"), _(
                "Thank you for your interest. This survey is not taking answers at the moment."
            ), tenant)
        questions = list(survey.questions.all())
        form = AnswerForm(survey, questions, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                surveys.complete_survey(tenant, survey, member, form.cleaned_data, now)
            except surveys.SurveyError as exc:
                for name, errors in exc.errors.items():
                    for error in errors:
                        form.add_error(None if name not in form.fields else name, error)
            else:
                return redirect("survey_public:answer", token=token)
        return render(request, "survey_public/answer.html", {
            "survey": survey, "brand": tenant, "form": form, "member": member,
        })
