"""Mass-loss alerts (批量删好友预警): the daily check records a guide who lost many WeCom contacts in
a day, tells the store managers and operators once on WeCom and by email, and shows the alerts on
the churn alerts page and in the API, where managers and operators acknowledge them."""
import socket
from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import alerts, tasks
from campaigns.models import ChurnAlert, OutreachSettings
from members import services as members
from scrm.models import Staff
from scrm.services import create_staff
from tests.api_cases import ListCases, RetrieveCases, assert_error

from .fake_wecom import configure, wecom  # noqa: F401
from .helpers import member

pytestmark = pytest.mark.django_db

AGENT_ID = 1000002
SITE = "https://crm.example.com"


def local_day(brand, days_ago):
    return timezone.localdate(timezone.now(), brand.tenant.zone) - timedelta(days=days_ago)


def deleted(brand, name, day, hour=10, guide=None, store=None):
    who = member(brand, name=name, owner_guide=guide or brand.guide, home_store=store or brand.store)
    when = datetime.combine(day, time(hour), tzinfo=brand.tenant.zone)
    _outcomes, errors = members.ingest_events(brand.tenant, [(0, {
        "external_id": f"del-{who.external_id}", "member_external_id": who.external_id,
        "type": "contact_deleted", "occurred_at": when, "properties": {"by": "customer"},
    })])
    assert not errors
    return who


def check(brand, as_of=None, threshold=None):
    return tasks.check_mass_losses.delay(brand.tenant.pk, (as_of or timezone.now()).isoformat(), threshold).get()


def stored(brand):
    with brand.scope():
        return list(ChurnAlert.objects.order_by("day", "guide_id"))


@pytest.fixture
def people(brand):
    """WeCom user ids and email addresses for everyone; a second store's manager who must not hear
    of the first store's guide."""
    with brand.scope():
        other_manager = create_staff(brand.tenant, "acme_manager2", "pw-12345678", "二店长", Staff.Role.STORE_MANAGER,
                                     [brand.store2])
        for staff, userid in ((brand.owner, "boss"), (brand.operator, "ops"), (brand.manager, "mgr1"),
                              (other_manager, "mgr2"), (brand.guide, "g1"), (brand.guide2, "g2")):
            Staff.objects.filter(pk=staff.pk).update(wecom_userid=userid)
            staff.user.email = f"{userid}@acme.example.cn"
            staff.user.save(update_fields=["email"])
    return other_manager


@pytest.fixture
def bad_day(brand, people, settings):
    """Yesterday guide 1 (store 1) lost five contacts and guide 2 (store 2) four."""
    settings.SITE_URL = SITE
    yesterday = local_day(brand, 1)
    with brand.scope():
        for i in range(5):
            deleted(brand, f"甲{i}", yesterday, hour=9 + i)
        for i in range(4):
            deleted(brand, f"乙{i}", yesterday, hour=9 + i, guide=brand.guide2, store=brand.store2)
    return yesterday


def with_agent(brand, fake):
    configure(brand, fake)
    with brand.scope():
        OutreachSettings.objects.filter(tenant=brand.tenant).update(wecom_agent_id=AGENT_ID)


# ---------------------------------------------------------------- the daily check

def test_five_contacts_lost_in_a_day_raise_an_alert_and_four_do_not(brand, bad_day):
    found = check(brand)
    assert [(r["guide_id"], r["deletions"], r["notified"]) for r in found] == [(brand.guide.pk, 5, True)]
    [alert] = stored(brand)
    assert (alert.guide_id, alert.store_id, alert.day, alert.deletions, alert.threshold) == (
        brand.guide.pk, brand.store.pk, bad_day, 5, 5)
    assert alert.notified_at is not None and alert.acknowledged_at is None


def test_a_lower_threshold_alerts_the_guide_with_four(brand, bad_day):
    check(brand, threshold=4)
    assert [(a.guide_id, a.deletions) for a in stored(brand)] == [(brand.guide.pk, 5), (brand.guide2.pk, 4)]


def test_deletions_of_today_or_the_day_before_yesterday_do_not_count_for_yesterday(brand, people):
    with brand.scope():
        for i in range(3):
            deleted(brand, f"今{i}", local_day(brand, 0), hour=0)
            deleted(brand, f"前{i}", local_day(brand, 2), hour=23)
        deleted(brand, "昨", local_day(brand, 1), hour=0)
    assert check(brand, threshold=2) == []
    assert stored(brand) == [] and mail.outbox == []


def test_a_rerun_or_retried_check_notifies_once(brand, bad_day, wecom):
    with_agent(brand, wecom)
    first = check(brand)
    again = check(brand)
    tasks.check_churn_alerts.delay(timezone.now().isoformat()).get()
    assert [r["notified"] for r in first] == [True] and [r["notified"] for r in again] == [False]
    assert [r["alert_id"] for r in again] == [r["alert_id"] for r in first]
    assert len(stored(brand)) == 1
    assert len(mail.outbox) == 1 and len(wecom.app_messages) == 1


def test_a_late_deletion_raises_the_count_without_notifying_again(brand, bad_day):
    check(brand)
    with brand.scope():
        deleted(brand, "甲迟", bad_day, hour=23)
    check(brand)
    [alert] = stored(brand)
    assert alert.deletions == 6 and len(mail.outbox) == 1


def test_another_brands_check_finds_nothing_of_ours(brand, other_brand, bad_day):
    assert check(other_brand) == []
    assert stored(other_brand) == []
    assert ChurnAlert.objects.unscoped().filter(tenant=other_brand.tenant).count() == 0


# ---------------------------------------------------------------- who is told, and how

def test_the_wecom_application_message_goes_to_the_store_managers_and_operators(brand, bad_day, wecom):
    with_agent(brand, wecom)
    check(brand)
    [sent] = wecom.app_messages
    assert sent["touser"] == "boss|mgr1|ops"
    assert sent["agentid"] == AGENT_ID and sent["msgtype"] == "text"
    text = sent["text"]["content"]
    assert brand.guide.name in text and brand.store.name in text and bad_day.isoformat() in text
    assert "5" in text and "批量删好友预警" in text
    assert f"{SITE}/campaigns/churn-alerts/?guide_id={brand.guide.pk}&start={bad_day}&end={bad_day}" in text
    [call] = wecom.calls("/cgi-bin/message/send")
    assert call["query"]["access_token"] in wecom.valid_tokens
    [alert] = stored(brand)
    assert alert.channels["wecom"] == {"status": "sent", "to": ["boss", "mgr1", "ops"], "missed": [], "detail": ""}
    assert sorted(r["id"] for r in alert.recipients) == sorted([brand.owner.pk, brand.operator.pk, brand.manager.pk])


def test_the_email_goes_to_their_addresses_in_the_brands_language(brand, bad_day):
    check(brand)
    [email] = mail.outbox
    assert sorted(email.to) == ["boss@acme.example.cn", "mgr1@acme.example.cn", "ops@acme.example.cn"]
    assert "批量删好友预警" in email.subject and brand.guide.name in email.subject
    assert f"{SITE}/campaigns/churn-alerts/?guide_id={brand.guide.pk}" in email.body and "5" in email.body
    [alert] = stored(brand)
    assert alert.channels["email"]["status"] == "sent"
    assert alert.channels["wecom"]["status"] == "off"


def test_a_brand_in_english_gets_english_messages(brand, bad_day, wecom):
    with_agent(brand, wecom)
    brand.tenant.default_language = "en"
    brand.tenant.save(update_fields=["default_language"])
    check(brand)
    assert mail.outbox[0].subject == f"Mass loss alert: {brand.guide.name} lost 5 WeCom contacts on {bad_day}"
    assert "at or above the alert threshold of 5 a day" in wecom.app_messages[0]["text"]["content"]


def test_inactive_staff_are_not_told(brand, bad_day):
    with brand.scope():
        Staff.objects.filter(pk=brand.operator.pk).update(active=False)
    check(brand)
    assert sorted(mail.outbox[0].to) == ["boss@acme.example.cn", "mgr1@acme.example.cn"]


def test_a_wecom_failure_still_emails_and_is_recorded(brand, bad_day, wecom):
    with_agent(brand, wecom)
    wecom.fail_next(45009, 1, path="/cgi-bin/message/send")
    found = check(brand)
    assert found[0]["notified"]
    assert wecom.app_messages == [] and len(mail.outbox) == 1
    [alert] = stored(brand)
    assert alert.channels["wecom"]["status"] == "failed" and "45009" in alert.channels["wecom"]["detail"]
    assert alert.channels["email"]["status"] == "sent" and alert.notified_at is not None


def test_an_unreachable_wecom_still_emails(brand, bad_day, wecom):
    with_agent(brand, wecom)
    wecom.stop()
    check(brand)
    [alert] = stored(brand)
    assert alert.channels["wecom"]["status"] == "failed" and len(mail.outbox) == 1


def test_a_mail_server_that_is_down_still_lets_wecom_through_and_is_recorded(brand, bad_day, wecom, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    with_agent(brand, wecom)
    check(brand)
    [alert] = stored(brand)
    assert alert.channels["email"]["status"] == "failed" and alert.channels["email"]["detail"]
    assert alert.channels["wecom"]["status"] == "sent" and len(wecom.app_messages) == 1


def test_nobody_with_an_address_is_recorded_as_such(brand, bad_day):
    with brand.scope():
        for staff in Staff.objects.all():
            staff.user.email = ""
            staff.user.save(update_fields=["email"])
    check(brand)
    [alert] = stored(brand)
    assert alert.channels["email"] == {"status": "nobody", "to": [], "detail": ""} and mail.outbox == []


# ---------------------------------------------------------------- the page

def page(brand, staff):
    return brand.session(staff).get("/campaigns/churn-alerts/")


def test_the_page_lists_the_alert_with_whom_it_notified(brand, bad_day, wecom):
    with_agent(brand, wecom)
    check(brand)
    answer = page(brand, brand.operator)
    html = answer.content.decode()
    assert [a.guide_id for a in answer.context["alerts"]] == [brand.guide.pk]
    assert 'data-testid="mass-loss-alerts"' in html and 'data-testid="acknowledge-button"' in html
    assert brand.manager.name in html and 'data-channel="wecom"' in html and 'data-channel="email"' in html


def test_the_page_shows_alerts_by_role(brand, bad_day, people):
    check(brand, threshold=4)
    assert [a.guide_id for a in page(brand, brand.manager).context["alerts"]] == [brand.guide.pk]
    assert [a.guide_id for a in page(brand, people).context["alerts"]] == [brand.guide2.pk]
    mine = page(brand, brand.guide)
    assert [a.guide_id for a in mine.context["alerts"]] == [brand.guide.pk]
    assert 'data-testid="acknowledge-button"' not in mine.content.decode()


def test_another_brand_sees_none_of_our_alerts_on_its_page(brand, other_brand, bad_day):
    check(brand)
    answer = page(other_brand, other_brand.operator)
    assert answer.context["alerts"] == [] and 'data-testid="mass-loss-alerts"' not in answer.content.decode()


def ack_url(alert):
    return f"/campaigns/churn-alerts/mass-losses/{alert.pk}/acknowledge/"


def test_a_store_manager_acknowledges_and_the_first_acknowledgement_stands(brand, bad_day):
    check(brand)
    [alert] = stored(brand)
    answer = brand.session(brand.manager).post(ack_url(alert), {"next": "/campaigns/churn-alerts/?days=7"})
    assert answer.status_code == 302 and answer["Location"] == "/campaigns/churn-alerts/?days=7"
    brand.session(brand.operator).post(ack_url(alert))
    [alert] = stored(brand)
    assert alert.acknowledged_by_id == brand.manager.pk and alert.acknowledged_at is not None
    assert brand.manager.name in page(brand, brand.operator).content.decode()


def test_a_guide_cannot_acknowledge_and_another_brand_gets_a_404(brand, other_brand, bad_day, people):
    check(brand)
    [alert] = stored(brand)
    assert brand.session(brand.guide).post(ack_url(alert)).status_code == 403
    assert brand.session(people).post(ack_url(alert)).status_code == 404
    assert other_brand.session(other_brand.operator).post(ack_url(alert)).status_code == 404
    assert stored(brand)[0].acknowledged_at is None


def test_the_settings_page_saves_the_agent_id(brand):
    client = brand.session(brand.operator)
    form = client.get("/campaigns/settings/").context["form"]
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update({"quiet_start": "21:00", "quiet_end": "09:00", "wecom_agent_id": str(AGENT_ID)})
    answer = client.post("/campaigns/settings/", data)
    assert answer.status_code == 302, answer.context["form"].errors
    with brand.scope():
        assert OutreachSettings.objects.get().wecom_agent_id == AGENT_ID
    assert 'name="wecom_agent_id"' in client.get("/campaigns/settings/").content.decode()


# ---------------------------------------------------------------- the API

URL = "/api/v1/churn-alerts/mass-losses/"


def test_the_api_lists_the_alert_with_its_channels(brand, bad_day):
    check(brand)
    [row] = brand.api().get(URL).json()["results"]
    assert row["guide"] == {"id": brand.guide.pk, "name": brand.guide.name}
    assert row["store"] == {"id": brand.store.pk, "name": brand.store.name}
    assert (row["day"], row["deletions"], row["threshold"]) == (bad_day.isoformat(), 5, 5)
    assert row["channels"]["email"]["status"] == "sent" and row["acknowledged_by"] is None


def test_the_api_filters_by_guide_store_day_and_acknowledgement(brand, bad_day):
    check(brand, threshold=4)
    client = brand.api()

    def guides(params):
        return [r["guide"]["id"] for r in client.get(URL, params).json()["results"]]

    assert guides({"store_id": brand.store2.pk}) == [brand.guide2.pk]
    assert guides({"guide_id": brand.guide.pk}) == [brand.guide.pk]
    assert guides({"start": local_day(brand, 0).isoformat()}) == []
    assert guides({"end": bad_day.isoformat()}) == [brand.guide.pk, brand.guide2.pk]
    client.post(f"{URL}{stored(brand)[0].pk}/acknowledge/")
    assert guides({"acknowledged": "true"}) == [brand.guide.pk]
    assert guides({"acknowledged": "false"}) == [brand.guide2.pk]


def test_the_api_shows_alerts_by_role(brand, bad_day, people):
    check(brand, threshold=4)
    for staff, expected in ((brand.guide, [brand.guide.pk]), (brand.guide2, [brand.guide2.pk]),
                            (brand.manager, [brand.guide.pk]), (people, [brand.guide2.pk]),
                            (brand.operator, [brand.guide.pk, brand.guide2.pk])):
        rows = brand.session(staff).get(URL).json()["results"]
        assert [r["guide"]["id"] for r in rows] == expected, staff.name


def test_acknowledging_over_the_api_is_for_managers_and_operators_only(brand, other_brand, bad_day):
    check(brand)
    [alert] = stored(brand)
    url = f"{URL}{alert.pk}/acknowledge/"
    assert_error(brand.session(brand.guide).post(url), 403)
    assert_error(other_brand.api().post(url), 404)
    assert_error(brand.session(brand.guide2).post(url), 404)
    answer = brand.session(brand.operator).post(url)
    assert answer.status_code == 200
    assert answer.json()["acknowledged_by"] == {"id": brand.operator.pk, "name": brand.operator.name}
    assert brand.session(brand.manager).post(url).json()["acknowledged_by"]["id"] == brand.operator.pk


class TestMassLossAlertEndpoint(ListCases, RetrieveCases):
    url = URL
    model = ChurnAlert
    contract_fields = ("guide", "store", "day", "deletions", "threshold", "notified_at", "recipients", "channels",
                       "acknowledged_at", "acknowledged_by")
    list_queries = 3

    def _alerts(self, brand, guide, store, days):
        """One deletion on each of ``days`` (days ago) and the check of the day after, alerting at 1."""
        found = []
        with brand.scope():
            for days_ago in days:
                day = local_day(brand, days_ago)
                deleted(brand, f"删{days_ago}", day, guide=guide, store=store)
                as_of = datetime.combine(day + timedelta(days=1), time(9), tzinfo=brand.tenant.zone)
                found_now = alerts.alert_mass_losses(brand.tenant, as_of, threshold=1)
                [row] = [r for r in found_now if r["guide_id"] == guide.pk]
                found.append(ChurnAlert.objects.get(pk=row["alert_id"]))
        return found

    def make(self, brand, count):
        return self._alerts(brand, brand.guide, brand.store, range(1, count + 1))

    def make_more(self, brand, count):
        return self._alerts(brand, brand.guide2, brand.store2, range(1, count + 1))
