"""Surveys: the signed link, answering once, the reward campaign, the summary, pages and API."""
import csv
import io
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone, translation

from campaigns import services, surveys
from campaigns.models import Campaign, GuideTask, Message, Question, StepRun, Survey, SurveyResponse
from coupons.models import Coupon
from members.models import Event, EventType
from scrm.tenancy import tenant_context
from tests.api_cases import assert_error

from .helpers import T0, campaign, member, template

pytestmark = pytest.mark.django_db

FAREWELL = [
    ("Why did you stop coming?", Question.Kind.SINGLE, True, ["Price", "Style", "Service"]),
    ("What should we improve?", Question.Kind.MULTIPLE, True, ["New arrivals", "Sizes", "Prices"]),
    ("Anything else?", Question.Kind.TEXT, False, []),
]


def make_survey(brand, name="告别问卷", status=Survey.Status.OPEN, questions=FAREWELL, **fields):
    with brand.scope():
        survey = Survey.objects.create(tenant=brand.tenant, name=name, status=status,
                                       thanks="谢谢！券已放入您的账户。", **fields)
        for position, (text, kind, required, choices) in enumerate(questions):
            Question.objects.create(tenant=brand.tenant, survey=survey, position=position, text=text, kind=kind,
                                    required=required, choices=choices)
    return survey


def q(survey, position):
    return f"q{survey.questions.get(position=position).pk}"


def q_(survey, position):
    """The field name of a question, looked up from outside any brand's scope."""
    with tenant_context(survey.tenant_id):
        return q(survey, position)


def answers(survey, why="Price", improve=("Sizes",), text=""):
    with tenant_context(survey.tenant_id):
        return {q(survey, 0): why, q(survey, 1): list(improve), q(survey, 2): text}


def path_of(brand, survey, who, issued_at=None):
    return "/s/" + surveys.make_token(brand.tenant.pk, survey.pk, who.pk, issued_at or timezone.now()) + "/"


@pytest.fixture
def farewell(brand):
    survey = make_survey(brand)
    with brand.scope():
        lin = member(brand, name="林晓", mobile="13800138001")
    return {"survey": survey, "lin": lin}


# ---------------------------------------------------------------- the builder

def test_an_operator_builds_a_survey_with_questions_in_the_order_they_arranged(brand):
    client = brand.session(brand.operator)
    form = {
        "name": "告别问卷", "status": "open", "intro": "占用您 1 分钟", "thanks": "谢谢", "link_days": "30",
        "questions-TOTAL_FORMS": "3", "questions-INITIAL_FORMS": "0",
        "questions-0-text": "Anything else?", "questions-0-kind": "text", "questions-0-position": "2",
        "questions-1-text": "Why did you stop coming?", "questions-1-kind": "single", "questions-1-required": "on",
        "questions-1-choices_text": "Price\n Style \n\nService", "questions-1-position": "0",
        "questions-2-text": "What should we improve?", "questions-2-kind": "multiple", "questions-2-required": "on",
        "questions-2-choices_text": "Sizes\nPrices", "questions-2-position": "1",
    }
    answer = client.post("/campaigns/surveys/new/", form)
    assert answer.status_code == 302, answer.context and answer.context["questions"].errors
    with brand.scope():
        survey = Survey.objects.get()
        asked = [(x.text, x.kind, x.required, x.choices) for x in survey.questions.all()]
    assert asked == [
        ("Why did you stop coming?", "single", True, ["Price", "Style", "Service"]),
        ("What should we improve?", "multiple", True, ["Sizes", "Prices"]),
        ("Anything else?", "text", False, []),
    ]
    assert answer["Location"] == f"/campaigns/surveys/{survey.pk}/"
    assert client.get(f"/campaigns/surveys/{survey.pk}/edit/").status_code == 200


def test_the_builder_says_what_is_wrong_with_a_choice_question(brand):
    form = {
        "name": "问卷", "status": "draft", "link_days": "",
        "questions-TOTAL_FORMS": "1", "questions-INITIAL_FORMS": "0",
        "questions-0-text": "Colour?", "questions-0-kind": "single", "questions-0-choices_text": "Red\nRed",
    }
    answer = brand.session(brand.operator).post("/campaigns/surveys/new/", form, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200
    errors = answer.context["questions"].forms[0].errors["choices_text"]
    assert errors == ["A choice question needs at least two choices.", "Listed twice: Red."]
    with brand.scope():
        assert not Survey.objects.exists()


def test_a_survey_without_questions_is_not_saved(brand):
    form = {"name": "空问卷", "status": "draft", "questions-TOTAL_FORMS": "0", "questions-INITIAL_FORMS": "0"}
    answer = brand.session(brand.operator).post("/campaigns/surveys/new/", form, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200 and "Add at least one question." in answer.content.decode()


def test_questions_stay_as_asked_once_members_have_answered(brand, farewell):
    survey = farewell["survey"]
    with brand.scope():
        surveys.complete_survey(brand.tenant, survey, farewell["lin"], answers(survey), T0)
    client = brand.session(brand.operator)
    page = client.get(f"/campaigns/surveys/{survey.pk}/edit/")
    assert page.context["locked"] and 'data-testid="locked"' in page.content.decode()
    answer = client.post(f"/campaigns/surveys/{survey.pk}/edit/", {
        "name": "告别问卷（已改名）", "status": "closed", "link_days": "30",
        "questions-TOTAL_FORMS": "0", "questions-INITIAL_FORMS": "3",
    })
    assert answer.status_code == 302
    survey.refresh_from_db()
    assert survey.name == "告别问卷（已改名）" and survey.status == "closed"
    with brand.scope():
        assert survey.questions.count() == 3


# ---------------------------------------------------------------- the member's link

def test_the_signed_link_opens_the_survey_without_a_login(client, brand, farewell):
    page = client.get(path_of(brand, farewell["survey"], farewell["lin"]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "告别问卷" in html and "Why did you stop coming?" in html and "Service" in html
    assert html.count('data-testid="question"') == 3


def test_a_tampered_link_shows_a_friendly_page_and_no_survey(client, brand, farewell):
    survey, lin = farewell["survey"], farewell["lin"]
    token = surveys.make_token(brand.tenant.pk, survey.pk, lin.pk, timezone.now())
    signature = token.rsplit(":", 1)[1]
    forged = signing.b64_encode(f"[{brand.tenant.pk},{survey.pk},{lin.pk + 1},1]".encode()).decode() + ":" + signature
    for bad in (token[:-2] + "xx", forged, "not-a-token"):
        page = client.get(f"/s/{bad}/")
        assert page.status_code == 404
        html = page.content.decode()
        assert 'data-testid="problem"' in html and "Why did you stop coming?" not in html


def test_a_link_naming_another_brands_survey_or_member_does_not_open(client, brand, other_brand, farewell):
    theirs = make_survey(other_brand, name="对手问卷")
    with other_brand.scope():
        their_member = member(other_brand, name="周敏")
    for token in (
        surveys.make_token(brand.tenant.pk, theirs.pk, farewell["lin"].pk, timezone.now()),
        surveys.make_token(brand.tenant.pk, farewell["survey"].pk, their_member.pk, timezone.now()),
        surveys.make_token(other_brand.tenant.pk, farewell["survey"].pk, farewell["lin"].pk, timezone.now()),
    ):
        page = client.get(f"/s/{token}/")
        assert page.status_code == 404 and "对手问卷" not in page.content.decode()


def test_a_link_older_than_the_surveys_validity_has_expired(client, brand, farewell):
    survey, lin = farewell["survey"], farewell["lin"]
    old = surveys.make_token(brand.tenant.pk, survey.pk, lin.pk, timezone.now() - timedelta(days=31))
    recent = surveys.make_token(brand.tenant.pk, survey.pk, lin.pk, timezone.now() - timedelta(days=29))
    assert client.get(f"/s/{old}/").status_code == 410
    assert client.get(f"/s/{recent}/").status_code == 200
    Survey.objects.unscoped().filter(pk=survey.pk).update(link_days=None)
    assert client.get(f"/s/{old}/").status_code == 200


def test_a_closed_survey_says_so_and_takes_no_answers(client, brand, farewell):
    survey, lin = farewell["survey"], farewell["lin"]
    Survey.objects.unscoped().filter(pk=survey.pk).update(status=Survey.Status.CLOSED)
    path = path_of(brand, survey, lin)
    assert "This survey is closed" in client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    client.post(path, answers(survey))
    with brand.scope():
        assert not SurveyResponse.objects.exists()


# ---------------------------------------------------------------- answering

def test_missing_required_answers_and_choices_not_offered_are_shown_next_to_the_question(client, brand, farewell):
    survey, lin = farewell["survey"], farewell["lin"]
    path = path_of(brand, survey, lin)
    data = answers(survey, why="Free gifts", improve=())
    page = client.post(path, data, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    form = page.context["form"]
    assert form.errors == {q_(survey, 0): ["Choose one of the options shown."],
                           q_(survey, 1): ["Please answer this question."]}
    html = page.content.decode()
    assert html.count('data-testid="question-error"') == 2
    with brand.scope():
        assert not SurveyResponse.objects.exists() and not Event.objects.exists()


def test_the_service_refuses_answers_it_was_not_offered(brand, farewell):
    survey = farewell["survey"]
    with brand.scope(), pytest.raises(surveys.SurveyError) as raised:
        surveys.complete_survey(brand.tenant, survey, farewell["lin"], {
            q(survey, 0): ["Price", "Style"], q(survey, 1): ["Sizes", "Everything"], q(survey, 2): "x" * 2001,
        }, T0)
    with brand.scope():
        assert raised.value.errors == {
            q(survey, 0): ["Choose one option."], q(survey, 1): ["Choose one of the options shown."],
            q(survey, 2): ["Please keep it under 2000 characters."],
        }
        assert not SurveyResponse.objects.exists()


def test_answering_twice_keeps_the_first_answers_and_records_one_event(client, brand, farewell,
                                                                        django_capture_on_commit_callbacks):
    survey, lin = farewell["survey"], farewell["lin"]
    path = path_of(brand, survey, lin)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(path, answers(survey, why="Price", text="太贵了"))
        second = client.post(path, answers(survey, why="Style"))
    assert first.status_code == 302 and second.status_code == 200
    for thanks in (second, client.get(path)):
        assert 'data-testid="thanks"' in thanks.content.decode() and "谢谢！券已放入您的账户。" in thanks.content.decode()
    with brand.scope():
        response = SurveyResponse.objects.get()
        assert sorted(response.answers.values_list("choice", "text")) == [("", "太贵了"), ("Price", ""), ("Sizes", "")]
        events = list(Event.objects.filter(type=EventType.SURVEY_COMPLETED))
        assert len(events) == 1
        assert events[0].member_id == lin.pk
        assert events[0].properties["survey_id"] == survey.pk and events[0].properties["response_id"] == response.pk
        again, created = surveys.complete_survey(brand.tenant, survey, lin, answers(survey, why="Service"), T0)
        assert (again.pk, created) == (response.pk, False)
        assert Event.objects.filter(type=EventType.SURVEY_COMPLETED).count() == 1


def test_completing_a_survey_announces_the_activity_once(brand, farewell, django_capture_on_commit_callbacks):
    from members.signals import activity_recorded

    heard = []

    def listen(sender, tenant_id, member_ids, **kwargs):
        heard.append((tenant_id, list(member_ids)))

    activity_recorded.connect(listen)
    try:
        with brand.scope(), django_capture_on_commit_callbacks(execute=True):
            survey = farewell["survey"]
            surveys.complete_survey(brand.tenant, survey, farewell["lin"], answers(survey), T0)
            surveys.complete_survey(brand.tenant, survey, farewell["lin"], answers(survey), T0)
    finally:
        activity_recorded.disconnect(listen)
    assert heard == [(brand.tenant.pk, [farewell["lin"].pk])]


# ---------------------------------------------------------------- the reward

def test_completing_the_survey_enrols_the_member_in_the_reward_campaign_and_issues_the_coupon_once(
        client, brand, farewell, django_capture_on_commit_callbacks):
    survey, lin = farewell["survey"], farewell["lin"]
    other = make_survey(brand, name="满意度调查")
    with brand.scope():
        gift = template(brand, name="问卷答谢 ¥20")
        reward = campaign(brand, [{"delay_days": 0, "action": "coupon", "coupon_template": gift}],
                          name="问卷答谢", trigger="survey_completed", trigger_stage="", trigger_survey=survey)
        campaign(brand, [], name="任意问卷", trigger="survey_completed", trigger_stage="")
        campaign(brand, [], name="只看满意度", trigger="survey_completed", trigger_stage="", trigger_survey=other)
        # A daily pass never enrols anyone in a survey-triggered campaign: only answering does.
        services.enrol_daily(brand.tenant, timezone.now())
    path = path_of(brand, survey, lin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(path, answers(survey))
        client.post(path, answers(survey))
    with brand.scope():
        enrolled = dict(Campaign.objects.values_list("name", "enrolments__member_id"))
        assert enrolled == {"问卷答谢": lin.pk, "任意问卷": lin.pk, "只看满意度": None}
        coupons = list(Coupon.objects.filter(member=lin))
        assert len(coupons) == 1 and coupons[0].template_id == gift.pk and coupons[0].campaign_id == reward.pk
        assert StepRun.objects.get(campaign=reward).status == StepRun.Status.DONE
        services.run_due_steps(brand.tenant, timezone.now() + timedelta(hours=1))
        assert Coupon.objects.filter(member=lin).count() == 1


# ---------------------------------------------------------------- sending

def test_a_survey_step_sends_each_member_their_own_link_through_the_channel(brand, farewell, client, settings):
    settings.SITE_URL = "https://crm.example.com"
    survey, lin = farewell["survey"], farewell["lin"]
    Survey.objects.unscoped().filter(pk=survey.pk).update(link_days=None)  # sent at T0, opened today
    with brand.scope():
        wang = member(brand, name="王芳", mobile="13900139002")
        member(brand, name="无手机")
        sender = campaign(brand, [{"delay_days": 0, "action": "survey", "channel": "sms", "survey": survey,
                                   "script": "{name}，送您一份问卷：{survey_link}"}],
                          trigger="schedule", schedule="daily", trigger_stage="")
        services.enrol_daily(brand.tenant, T0)
        result = services.run_due_steps(brand.tenant, T0)
        bodies = dict(Message.objects.filter(campaign=sender).values_list("member_id", "body"))
        runs = dict(StepRun.objects.filter(campaign=sender).values_list("member__name", "reason"))
    assert result.messages == 2 and set(bodies) == {lin.pk, wang.pk}
    assert runs["无手机"] == StepRun.Reason.NO_RECIPIENT
    prefix = "林晓，送您一份问卷：https://crm.example.com/s/"
    assert bodies[lin.pk].startswith(prefix)
    token = bodies[lin.pk][len(prefix):].rstrip("/")
    link = surveys.read_token(token)
    assert (link.tenant_id, link.survey_id, link.member_id) == (brand.tenant.pk, survey.pk, lin.pk)
    assert bodies[wang.pk] != bodies[lin.pk].replace("林晓", "王芳")
    assert "Why did you stop coming?" in client.get(f"/s/{token}/").content.decode()


def test_a_survey_step_without_the_variable_still_carries_the_link(brand, farewell):
    survey = farewell["survey"]
    with brand.scope():
        sender = campaign(brand, [{"delay_days": 0, "action": "survey", "channel": "console", "survey": survey,
                                   "script": "{name}，请填写问卷"}], trigger="schedule", schedule="daily", trigger_stage="")
        services.enrol_daily(brand.tenant, T0)
        services.run_due_steps(brand.tenant, T0)
        body = Message.objects.get(campaign=sender).body
    assert body.startswith("林晓，请填写问卷 http://") and "/s/" in body


def test_a_guide_task_with_a_survey_puts_the_link_in_the_script(brand, farewell):
    survey = farewell["survey"]
    with brand.scope():
        campaign(brand, [{"delay_days": 0, "action": "guide_task", "survey": survey,
                          "script": "{name}您好，方便填个问卷吗？{survey_link}"}],
                 trigger="schedule", schedule="daily", trigger_stage="")
        services.enrol_daily(brand.tenant, T0)
        services.run_due_steps(brand.tenant, T0)
        script = GuideTask.objects.get().script
    token = script.split("/s/")[1].rstrip("/")
    assert script.startswith("林晓您好，方便填个问卷吗？http") and surveys.read_token(token).member_id == farewell["lin"].pk


def test_the_step_form_asks_for_the_survey_when_the_script_uses_its_link(brand, farewell):
    from campaigns.forms import StepForm

    with brand.scope(), translation.override("en"):
        form = StepForm({"delay_days": 0, "action": "guide_task", "script": "填问卷：{survey_link}", "due_hours": 24})
        assert not form.is_valid() and form.errors["survey"] == ["Choose the survey the link opens."]
        form = StepForm({"delay_days": 0, "action": "survey", "due_hours": 24, "survey": farewell["survey"].pk})
        assert not form.is_valid() and form.errors["channel"] == ["A survey is sent through a channel."]
        form = StepForm({"delay_days": 0, "action": "survey", "due_hours": 24, "channel": "sms",
                         "survey": farewell["survey"].pk, "script": "{survey_link}"})
        assert form.is_valid(), form.errors


# ---------------------------------------------------------------- the summary

def test_the_summary_counts_and_shares_each_choice_of_a_worked_example(brand):
    survey = make_survey(brand)
    with brand.scope():
        people = [member(brand, name=f"会员{i}") for i in range(4)]
        sheet = [("Price", ["Sizes", "Prices"], "太贵"), ("Price", ["Sizes"], ""),
                 ("Style", ["New arrivals", "Sizes"], "款式旧"), ("Price", ["Prices"], "")]
        for who, (why, improve, text) in zip(people, sheet):
            surveys.complete_survey(brand.tenant, survey, who, answers(survey, why, improve, text), T0)
        result = surveys.summary(survey)
    assert result["responses"] == 4
    why, improve, other = result["questions"]
    assert [(c["choice"], c["count"], round(c["share"], 4)) for c in why["choices"]] == [
        ("Price", 3, 0.75), ("Style", 1, 0.25), ("Service", 0, 0.0)]
    # Several choices per member: 3 of 4 want sizes, 2 of 4 prices; the shares add up to 150 %.
    assert [(c["choice"], c["count"], c["share"]) for c in improve["choices"]] == [
        ("New arrivals", 1, 0.25), ("Sizes", 3, 0.75), ("Prices", 2, 0.5)]
    assert (other["answered"], other["skipped"]) == (2, 2)
    assert [a.text for a in other["texts"]] == ["款式旧", "太贵"]

    page = brand.session(brand.operator).get(f"/campaigns/surveys/{survey.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="responses">4<' in html and "75.0%" in html and "25.0%" in html and "款式旧" in html
    assert page.context["chart"][0]["counts"] == [3, 1, 0]


def test_the_csv_export_has_one_row_per_response_with_every_answer(brand):
    survey = make_survey(brand)
    with brand.scope():
        lin = member(brand, name="林晓")
        wang = member(brand, name="=王芳")
        surveys.complete_survey(brand.tenant, survey, lin, answers(survey, "Price", ["Sizes", "Prices"], "太贵"), T0)
        later = T0 + timedelta(hours=1)
        surveys.complete_survey(brand.tenant, survey, wang, answers(survey, "Style", ["Sizes"]), later)
    answer = brand.session(brand.operator).get(f"/campaigns/surveys/{survey.pk}/answers.csv", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode("utf-8-sig"))))
    assert rows[0][1:] == ["member external id", "member name", "submitted at", "Why did you stop coming?",
                           "What should we improve?", "Anything else?"]
    assert rows[1][1:] == [lin.external_id, "林晓", "2026-03-02 10:00", "Price", "Sizes; Prices", "太贵"]
    assert rows[2][2:] == ["'=王芳", "2026-03-02 11:00", "Style", "Sizes", ""]


# ---------------------------------------------------------------- isolation and roles

def test_another_brands_survey_pages_are_not_found(brand, other_brand):
    theirs = make_survey(other_brand, name="对手问卷")
    client = brand.session(brand.operator)
    for path in ("/", "/edit/", "/answers.csv", "/preview/"):
        assert client.get(f"/campaigns/surveys/{theirs.pk}{path}").status_code == 404
    assert "对手问卷" not in client.get("/campaigns/surveys/").content.decode()


def test_guides_do_not_open_the_survey_dashboard(brand, farewell):
    assert brand.session(brand.guide).get(f"/campaigns/surveys/{farewell['survey'].pk}/").status_code == 403


def test_the_api_lists_surveys_with_questions_and_leaves_out_another_brands(brand, other_brand, farewell):
    theirs = make_survey(other_brand, name="对手问卷")
    listed = brand.api().get("/api/v1/surveys/").json()["results"]
    assert [row["name"] for row in listed] == ["告别问卷"]
    assert [x["text"] for x in listed[0]["questions"]] == [x[0] for x in FAREWELL]
    assert brand.api().get(f"/api/v1/surveys/{theirs.pk}/").status_code == 404
    assert_error(brand.api().get(f"/api/v1/surveys/{theirs.pk}/summary/"), 404)


def test_the_api_answers_responses_and_the_summary(brand, other_brand, farewell):
    survey = farewell["survey"]
    theirs = make_survey(other_brand, name="对手问卷")
    with brand.scope():
        surveys.complete_survey(brand.tenant, survey, farewell["lin"], answers(survey, "Service", ["Sizes"], "好"), T0)
    with other_brand.scope():
        surveys.complete_survey(other_brand.tenant, theirs, member(other_brand, name="周敏"), answers(theirs), T0)
    api = brand.api()
    responses = api.get("/api/v1/survey-responses/", {"survey_id": survey.pk}).json()["results"]
    assert len(responses) == 1 and responses[0]["member_external_id"] == farewell["lin"].external_id
    assert {(a["choice"], a["text"]) for a in responses[0]["answers"]} == {("Service", ""), ("Sizes", ""), ("", "好")}
    assert api.get("/api/v1/survey-responses/").json()["count"] == 1
    summary = api.get(f"/api/v1/surveys/{survey.pk}/summary/").json()
    assert summary["responses"] == 1
    assert summary["questions"][0]["choices"][2] == {"choice": "Service", "count": 1, "share": 1.0, "offered": True}
    assert summary["questions"][2]["texts"] == ["好"]
    assert brand.session(brand.guide).get("/api/v1/survey-responses/").status_code == 403


def test_the_campaign_builder_offers_the_trigger_survey_and_a_steps_survey(brand, farewell):
    html = brand.session(brand.operator).get("/campaigns/new/").content.decode()
    assert 'name="trigger_survey"' in html and 'name="steps-0-survey"' in html and "告别问卷" in html


def test_the_responses_list_costs_the_same_queries_for_3_rows_and_for_13(brand):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    survey = make_survey(brand)
    brand.api().get("/api/v1/survey-responses/")  # the key records its last use on a first request
    counts = []
    for n in (3, 10):
        with brand.scope():
            for _ in range(n):
                surveys.complete_survey(brand.tenant, survey, member(brand), answers(survey), T0)
        with CaptureQueriesContext(connection) as queries:
            rows = brand.api().get("/api/v1/survey-responses/", {"survey_id": survey.pk}).json()["results"]
        assert all(len(row["answers"]) == 2 for row in rows)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
