"""The dashboard shell: signing in and out, the home page and its panels (members, to do, lifecycle,
campaigns, coupons, acquisition) by role and brand, navigation and languages."""
from datetime import datetime, time, timedelta, timezone as dt_timezone
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from campaigns import alerts, delivery
from campaigns import services as campaigns
from campaigns.models import Campaign, LiveCode, LiveCodeJoin, Step
from coupons import services as coupons
from coupons.models import CouponTemplate
from lifecycle import services as lifecycle
from members.models import Member
from members.services import ingest_events, ingest_orders, upsert_members
from tests.conftest import PASSWORD

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=dt_timezone.utc)


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_staff_member_signs_in_lands_on_the_dashboard_and_signs_out(brand):
    client = Client()
    response = client.post("/login/", {"username": "acme_operator", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "运营" in response.content.decode()
    response = client.post("/logout/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert client.get("/").status_code == 302


def test_a_wrong_password_keeps_the_visitor_on_the_login_page(brand):
    response = Client().post("/login/", {"username": "acme_operator", "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "<form" in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_a_login_that_is_not_a_brands_staff_member_is_refused(db):
    user = get_user_model().objects.create_user("lonely", password=PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.get("/").status_code == 403
    assert client.get("/members/").status_code == 403


def test_a_deactivated_staff_member_cannot_sign_in(brand):
    from scrm.services import update_staff

    update_staff(brand.guide, active=False)
    response = Client().post("/login/", {"username": "acme_guide", "password": PASSWORD})
    assert response.status_code == 200


@pytest.fixture
def orders(brand):
    with brand.scope():
        upsert_members(brand.tenant, [
            (0, {"external_id": "M1", "name": "林晓", "mobile": "13800138001", "owner_guide": brand.guide,
                 "home_store": brand.store, "joined_at": T0}),
            (1, {"external_id": "M2", "name": "周敏", "owner_guide": brand.guide2, "home_store": brand.store2,
                 "joined_at": T0, "contact_status": "deleted_by_customer"}),
        ])
        base = {"placed_at": T0, "status": "paid", "total": Decimal("100.00"), "discount": Decimal("0"),
                "refunded_amount": Decimal("0"), "lines": []}
        ingest_orders(brand.tenant, [
            (0, {**base, "external_id": "O1", "member_external_id": "M1"}),
            (1, {**base, "external_id": "O2", "member_external_id": "M2"}),
            (2, {**base, "external_id": "O3", "mobile": "13000000000"}),
        ])


def test_the_home_page_shows_member_and_order_counts_and_the_order_binding_rate(brand, orders):
    page = brand.session(brand.operator).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="member-count">2<' in page
    assert 'data-testid="bind-rate">66.7%<' in page
    assert "2 of 3 orders bound to a member" in page
    assert "林晓" in page


def test_a_guide_sees_their_own_member_count_and_not_the_brands_binding_rate(brand, orders):
    page = brand.session(brand.guide).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="member-count">1<' in page
    assert "bind-rate" not in page
    assert "周敏" not in page


def test_the_navigation_links_every_section_and_hides_what_a_guide_may_not_use(brand):
    page = brand.session(brand.operator).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for href in ("/members/", "/lifecycle/", "/tagging/", "/campaigns/", "/coupons/", "/campaigns/live-codes/"):
        assert f'href="{href}"' in page
    assert 'aria-disabled="true"' not in page
    assert 'href="/settings/api-keys/"' in page
    guide_page = brand.session(brand.guide).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "/settings/" not in guide_page
    assert "/campaigns/live-codes/" not in guide_page


def test_the_dashboard_speaks_chinese_by_default_and_english_after_switching(brand):
    client = brand.session(brand.operator)
    assert "会员" in client.get("/").content.decode()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"}, follow=True)
    page = response.content.decode()
    assert 'lang="en"' in page and "Members" in page
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert 'lang="zh-hans"' in client.get("/").content.decode()


def test_static_assets_are_served_locally(brand):
    page = brand.session(brand.operator).get("/").content.decode()
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in page
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "//cdn" not in page and "https://" not in page


# ---------------------------------------------------------------- the panels of the home page

@pytest.fixture(autouse=True)
def own_cache(settings):
    """The panels keep some figures for minutes: each test starts from an empty cache of its own
    (clearing the configured one would empty a Redis database others use)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dashboard"}}
    cache.clear()


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _ByTestId(HTMLParser):
    """The text inside each element carrying a data-testid, in page order."""

    def __init__(self):
        super().__init__()
        self.found, self.open = {}, []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        testid = dict(attrs).get("data-testid")
        if testid:
            self.found.setdefault(testid, []).append("")
        self.open.append((testid, len(self.found.get(testid, [])) - 1) if testid else None)

    def handle_endtag(self, tag):
        if tag not in _VOID and self.open:
            self.open.pop()

    def handle_data(self, data):
        for entry in self.open:
            if entry:
                self.found[entry[0]][entry[1]] += " " + data


def texts(page, testid):
    parser = _ByTestId()
    parser.feed(page)
    return [" ".join(t.split()) for t in parser.found.get(testid, [])]


def text(page, testid):
    found = texts(page, testid)
    assert len(found) == 1, (testid, found)
    return found[0]


def home(brand, staff):
    response = brand.session(staff).get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


def local_at(brand, days_ago, hour):
    day = timezone.localdate(timezone.now(), brand.tenant.zone) - timedelta(days=days_ago)
    return datetime.combine(day, time(hour), tzinfo=brand.tenant.zone)


def add_members(brand, rows):
    """{name: member} for rows of (name, store, guide, extra fields), joined 400 days ago."""
    joined = timezone.now() - timedelta(days=400)
    items = [
        (i, {"external_id": f"{brand.tenant.slug}-{name}", "name": name, "home_store": store, "owner_guide": guide,
             "joined_at": joined, **extra})
        for i, (name, store, guide, extra) in enumerate(rows)
    ]
    with brand.scope():
        _outcomes, errors = upsert_members(brand.tenant, items)
        assert not errors, errors
        return {m.name: m for m in Member.objects.filter(external_id__in=[i[1]["external_id"] for i in items])}


def add_order(brand, who, placed_at, total="100.00"):
    with brand.scope():
        _outcomes, errors = ingest_orders(brand.tenant, [(0, {
            "external_id": f"{who.external_id}-{placed_at:%Y%m%d%H%M}", "member_external_id": who.external_id,
            "placed_at": placed_at, "status": "paid", "total": Decimal(total), "refunded_amount": Decimal("0"),
        })])
        assert not errors, errors


# ---------------------------------------------------------------- lifecycle

@pytest.fixture
def stages(brand):
    """Two lifecycle runs a week apart. Store 1 (guide 1): A, B, C, H; store 2 (guide 2): D, F, G.

    last order     a week ago             now
    A 100 days     dormant                dormant
    B  95 days     growth, warning        dormant
    C 200 + 2 days churned                growth (a win-back)
    H  63 days     growth                 growth, warning (raised this week)
    D 185 days     dormant                churned
    F 170 days     dormant                dormant
    G  92 days     growth, warning        dormant
    """
    now = timezone.now()
    people = add_members(brand, [
        (name, brand.store if name in "ABCH" else brand.store2, brand.guide if name in "ABCH" else brand.guide2, {})
        for name in "ABCHDFG"
    ])
    for name, days in (("A", 100), ("B", 95), ("C", 200), ("C", 2), ("H", 63), ("D", 185), ("F", 170), ("G", 92)):
        add_order(brand, people[name], now - timedelta(days=days, hours=1))
    lifecycle.score_full(brand.tenant, now - timedelta(days=7))
    lifecycle.score_full(brand.tenant, now)
    return people


def stage_figures(page):
    return {
        stage: (text(page, f"dash-stage-count-{stage}"), (texts(page, f"dash-stage-change-{stage}") or [None])[0])
        for stage in ("introduction", "growth", "maturity", "dormant", "churned")
    }


def test_the_lifecycle_panel_shows_the_stages_their_change_over_the_week_and_the_flows(brand, stages):
    page = home(brand, brand.operator)
    assert stage_figures(page) == {
        "introduction": ("0", "0"), "growth": ("2", "-1"), "maturity": ("0", "0"), "dormant": ("4", "+1"),
        "churned": ("1", "0"),
    }
    assert text(page, "dash-warnings") == "1"
    assert text(page, "dash-warnings-change") == "-1"
    assert text(page, "dash-win-backs") == "1"
    assert text(page, "dash-churned") == "1"
    assert 'href="/lifecycle/"' in page.split('data-testid="dashboard-lifecycle"')[1]
    assert 'id="dash-spark-warnings"' in page


def test_a_store_manager_sees_the_lifecycle_of_their_stores_only(brand, stages):
    page = home(brand, brand.manager)
    assert stage_figures(page) == {
        "introduction": ("0", "0"), "growth": ("2", "0"), "maturity": ("0", "0"), "dormant": ("2", "+1"),
        "churned": ("0", "-1"),
    }
    assert text(page, "dash-win-backs") == "1"
    assert text(page, "dash-churned") == "0"


def test_the_lifecycle_panel_waits_for_the_first_run(brand):
    page = home(brand, brand.operator)
    assert "No scoring run yet" in page
    assert "dash-stage-count-growth" not in page


def test_the_warnings_raised_this_week_are_on_the_to_do_list(brand, stages):
    assert text(home(brand, brand.operator), "todo-count-warnings") == "1"
    assert text(home(brand, brand.guide2), "todo-count-warnings") == "0"


# ---------------------------------------------------------------- to do and campaigns

def schedule_campaign(brand, name, step, status=Campaign.Status.ACTIVE):
    with brand.scope():
        made = Campaign.objects.create(
            tenant=brand.tenant, name=name, status=status, trigger="schedule", schedule="once",
        )
        Step.objects.create(tenant=brand.tenant, campaign=made, position=0, **step)
    return made


def enrol(brand, campaign, people, as_of):
    with brand.scope():
        campaigns.enrol_members(campaign, Member.objects.filter(pk__in=[p.pk for p in people]), as_of)
        campaigns.run_due_steps(brand.tenant, as_of, campaign_ids=[campaign.pk])


TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好"}
MESSAGE = {"delay_days": 0, "action": "message", "script": "{name}您好"}


@pytest.fixture
def work(brand):
    """Campaign 回购: tasks for X1 (store 1) and X2 (store 2) given three days ago, overdue now; X1
    bought ¥1,299 two days ago. Campaign 欢迎: a task for X3 due in a minute. A webhook message that
    died (no webhook address) and a console message waiting. A paused campaign."""
    people = add_members(brand, [
        ("X1", brand.store, brand.guide, {}), ("X2", brand.store2, brand.guide2, {}),
        *((name, brand.store, brand.guide, {}) for name in ("X3", "X4", "X5")),
    ])
    now = timezone.now()
    buy_back = schedule_campaign(brand, "回购", TASK)
    enrol(brand, buy_back, [people["X1"], people["X2"]], local_at(brand, 3, 10))
    add_order(brand, people["X1"], local_at(brand, 2, 15), "1299.00")
    welcome = schedule_campaign(brand, "欢迎", {**TASK, "due_hours": 1})
    enrol(brand, welcome, [people["X3"]], now - timedelta(minutes=59))
    hook = schedule_campaign(brand, "推送", {**MESSAGE, "channel": "webhook"})
    enrol(brand, hook, [people["X4"]], local_at(brand, 1, 10))
    with brand.scope():
        delivery.deliver_due(brand.tenant, local_at(brand, 1, 11))
    console = schedule_campaign(brand, "提醒", {**MESSAGE, "channel": "console"})
    enrol(brand, console, [people["X5"]], local_at(brand, 1, 12))
    schedule_campaign(brand, "暂停的", TASK, status=Campaign.Status.PAUSED)
    return {"now": now, "buy_back": buy_back, "welcome": welcome, "people": people}


def _due_later_today(brand, work):
    tonight = local_at(brand, -1, 0)
    return "1" if work["now"] + timedelta(minutes=1) < tonight else "0"


def test_the_to_do_list_counts_overdue_and_todays_tasks_and_the_outbox(brand, work):
    page = home(brand, brand.operator)
    assert text(page, "todo-count-overdue") == "2"
    assert text(page, "todo-count-today") == _due_later_today(brand, work)
    assert text(page, "todo-count-failed") == "1"
    assert text(page, "todo-count-waiting") == "1"
    assert 'href="/campaigns/tasks/"' in page.split('data-testid="todo-overdue"')[0].rsplit("<a", 1)[1]


def test_a_store_manager_and_a_guide_see_their_own_tasks_and_no_outbox(brand, work):
    page = home(brand, brand.manager)
    assert text(page, "todo-count-overdue") == "1"
    assert "todo-failed" not in page and "todo-waiting" not in page
    guide_page = home(brand, brand.guide2)
    assert text(guide_page, "todo-count-overdue") == "1"
    assert text(guide_page, "todo-count-today") == "0"
    assert 'href="/guide/"' in guide_page.split('data-testid="todo-overdue"')[0].rsplit("<a", 1)[1]


def test_running_campaigns_show_their_funnel_the_best_selling_first(brand, work):
    page = home(brand, brand.operator)
    panel = page.split('data-testid="dashboard-campaigns"')[1]
    assert text(page, "active-campaigns") == "4"
    assert texts(panel, "campaign-name") == ["回购", "推送", "提醒", "欢迎"]
    assert "暂停的" not in panel
    assert texts(panel, "enrolled")[0] == "2"
    assert texts(panel, "reached")[0] == "2"
    assert texts(panel, "converted")[0] == "1 50.0%"
    assert texts(panel, "sales")[0] == "¥1,299.00"
    assert f'href="/campaigns/{work["buy_back"].pk}/"' in panel


def test_a_store_manager_sees_their_stores_campaign_results_and_a_guide_their_own(brand, work):
    manager = home(brand, brand.manager)
    assert "running-campaigns" not in manager
    assert text(manager, "attributed-sales") == "¥1,299.00"
    assert text(manager, "tasks-done") == "0"
    guide2 = home(brand, brand.guide2)
    assert text(guide2, "attributed-sales") == "¥0.00"


def test_an_unacknowledged_mass_loss_alert_is_on_the_managers_to_do_list(brand):
    yesterday = local_at(brand, 1, 10)
    people = add_members(brand, [("Y1", brand.store, brand.guide, {}), ("Y2", brand.store2, brand.guide2, {})])
    with brand.scope():
        for who in people.values():
            _outcomes, errors = ingest_events(brand.tenant, [(0, {
                "external_id": f"del-{who.external_id}", "member_external_id": who.external_id,
                "type": "contact_deleted", "occurred_at": yesterday, "properties": {"by": "customer"},
            })])
            assert not errors
        found = alerts.alert_mass_losses(brand.tenant, timezone.now(), threshold=1)
    assert len(found) == 2
    assert text(home(brand, brand.operator), "todo-count-alerts") == "2"
    assert text(home(brand, brand.manager), "todo-count-alerts") == "1"
    assert "todo-alerts" not in home(brand, brand.guide)


# ---------------------------------------------------------------- coupons

@pytest.fixture
def coupon_figures(brand):
    """Three coupons issued five days ago (two to store 1, one to store 2), one 40 days ago; a store 1
    coupon redeemed on a ¥300 order yesterday, and the old one on a ¥200 order today."""
    people = add_members(brand, [
        ("Z1", brand.store, brand.guide, {}), ("Z2", brand.store, brand.guide, {}),
        ("Z3", brand.store2, brand.guide2, {}), ("Z4", brand.store2, brand.guide2, {}),
    ])
    now = timezone.now()
    with brand.scope():
        template = CouponTemplate(
            tenant=brand.tenant, name="回店礼", type=CouponTemplate.Type.CASH_OFF, amount=Decimal("30.00"),
            threshold=Decimal("0"), validity=CouponTemplate.Validity.DAYS, valid_days=90,
        )
        template.full_clean(exclude=["tenant"])
        template.save()
        coupons.issue_coupons(brand.tenant, template, [people["Z4"].pk], as_of=now - timedelta(days=40))
        coupons.issue_coupons(brand.tenant, template, [people[n].pk for n in ("Z1", "Z2", "Z3")],
                              as_of=now - timedelta(days=5))
        codes = {c.member.name: c.code for c in template.coupons.select_related("member")}
        coupons.redeem_coupon(brand.tenant, codes["Z1"], order_external_id="R1", amount=Decimal("300.00"),
                              as_of=now - timedelta(days=1))
        coupons.redeem_coupon(brand.tenant, codes["Z4"], order_external_id="R2", amount=Decimal("200.00"),
                              as_of=now - timedelta(minutes=5))
    return template


def test_the_coupons_panel_counts_the_last_30_days(brand, coupon_figures):
    page = home(brand, brand.operator)
    assert text(page, "coupons-issued") == "3"
    assert text(page, "coupons-redeemed") == "2"
    assert text(page, "coupons-rate") == "33.3%"
    assert text(page, "coupons-sales") == "¥500.00"
    assert texts(page, "top-coupon") == ["回店礼 2 redeemed · ¥500.00"]


def test_a_store_manager_sees_the_coupons_of_their_stores_members(brand, coupon_figures):
    page = home(brand, brand.manager)
    assert text(page, "coupons-issued") == "2"
    assert text(page, "coupons-redeemed") == "1"
    assert text(page, "coupons-sales") == "¥300.00"


# ---------------------------------------------------------------- acquisition

@pytest.fixture
def joins(brand):
    """Cashier code of store 1: two joins five days ago; parcel card: one join of a store 2 member;
    an older join 40 days ago."""
    people = add_members(brand, [
        ("J1", brand.store, brand.guide, {}), ("J2", brand.store, brand.guide, {}),
        ("J3", brand.store2, brand.guide2, {}), ("J4", brand.store2, brand.guide2, {}),
    ])
    now = timezone.now()
    with brand.scope():
        cashier = LiveCode.objects.create(
            tenant=brand.tenant, name="收银台", channel_type="store_cashier", store=brand.store,
        )
        parcel = LiveCode.objects.create(tenant=brand.tenant, name="包裹卡", channel_type="parcel_card")
        for code, name, when in ((cashier, "J1", 5), (cashier, "J2", 5), (parcel, "J3", 5), (parcel, "J4", 40)):
            who = people[name]
            LiveCodeJoin.objects.create(
                tenant=brand.tenant, live_code=code, member=who, guide=who.owner_guide, store=who.home_store,
                door=LiveCodeJoin.Door.WECOM, key=f"test:{code.pk}:{who.pk}", joined_at=now - timedelta(days=when),
                new_member=True,
            )
    add_order(brand, people["J1"], now - timedelta(days=4))
    return people


def test_the_acquisition_panel_counts_joins_by_channel_and_store(brand, joins):
    page = home(brand, brand.operator)
    assert text(page, "acquisition-joins") == "3"
    assert text(page, "acquisition-converted") == "33.3%"
    assert texts(page, "top-channel") == ["Store cashier 2", "Parcel card 1"]
    assert texts(page, "top-store") == ["acme store 1 2", "acme store 2 1"]


def test_a_store_manager_sees_their_stores_joins_and_a_guide_no_acquisition_panel(brand, joins):
    page = home(brand, brand.manager)
    assert text(page, "acquisition-joins") == "2"
    assert texts(page, "top-store") == ["acme store 1 2"]
    assert "dashboard-acquisition" not in home(brand, brand.guide)


# ---------------------------------------------------------------- tenancy, numbers, cost

def test_another_brands_data_never_counts(brand, other_brand, request):
    for fixture in ("stages", "work", "coupon_figures", "joins"):
        request.getfixturevalue(fixture)  # every panel's data, all of it for ``brand``
    page = home(other_brand, other_brand.operator)
    assert "No scoring run yet" in page
    assert text(page, "member-count") == "0"
    assert text(page, "todo-count-overdue") == "0"
    assert text(page, "todo-count-failed") == "0"
    assert text(page, "active-campaigns") == "0"
    assert text(page, "coupons-issued") == "0"
    assert text(page, "coupons-sales") == "¥0.00"
    assert text(page, "acquisition-joins") == "0"
    for name in ("回购", "回店礼", "收银台", "acme store"):
        assert name not in page


def test_counts_are_grouped_by_thousands_in_chinese_as_in_english():
    for language in ("zh-hans", "en"):
        with translation.override(language):
            assert Template("{% load humanize %}{{ n|intcomma }}").render(Context({"n": 1100000})) == "1,100,000"


def test_the_member_figures_group_thousands(brand):
    with brand.scope():
        _outcomes, errors = upsert_members(brand.tenant, [
            (i, {"external_id": f"K{i:05d}", "name": f"会员{i}", "joined_at": T0}) for i in range(1002)
        ])
        assert not errors
    page = brand.session(brand.operator).get("/").content.decode()
    assert text(page, "member-count") == "1,002"


def test_new_members_are_compared_with_the_30_days_before_and_lost_contacts_counted(brand):
    now = timezone.now()
    with brand.scope():
        _outcomes, errors = upsert_members(brand.tenant, [
            (0, {"external_id": "N1", "name": "新甲", "joined_at": now - timedelta(days=3), "home_store": brand.store}),
            (1, {"external_id": "N2", "name": "新乙", "joined_at": now - timedelta(days=10), "home_store": brand.store2,
                 "contact_status": "deleted_by_customer"}),
            (2, {"external_id": "N3", "name": "旧丙", "joined_at": now - timedelta(days=45), "home_store": brand.store}),
            (3, {"external_id": "N4", "name": "旧丁", "joined_at": now - timedelta(days=50), "home_store": brand.store}),
            (4, {"external_id": "N5", "name": "旧戊", "joined_at": now - timedelta(days=55), "home_store": brand.store}),
        ])
        assert not errors
    page = home(brand, brand.operator)
    assert (text(page, "new-member-count"), text(page, "new-member-change")) == ("2", "-1")
    assert text(page, "lost-contact-count") == "1"
    assert text(page, "recently-lost") == "+1 in the last 30 days"
    manager = home(brand, brand.manager)
    assert (text(manager, "new-member-count"), text(manager, "new-member-change")) == ("1", "-2")
    assert text(manager, "lost-contact-count") == "0"
    assert texts(manager, "dashboard-newest")[0].split()[:2] == ["Newest", "members"]
    assert "新乙" not in manager


def _queries_of_the_page(brand, staff):
    client = brand.session(staff)
    client.get("/")  # sessions, translations and the like are loaded once
    cache.clear()  # and the panels compute every figure
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured)


def test_the_page_costs_a_bounded_number_of_queries_whatever_the_data(brand, request):
    request.getfixturevalue("stages")
    request.getfixturevalue("work")
    request.getfixturevalue("coupon_figures")
    request.getfixturevalue("joins")
    counts = {s.username: _queries_of_the_page(brand, s) for s in (brand.operator, brand.manager, brand.guide)}
    assert max(counts.values()) <= QUERY_BOUND, counts
    more = add_members(brand, [(f"N{i}", brand.store2, brand.guide2, {}) for i in range(3)])
    for i, who in enumerate(more.values()):
        enrol(brand, schedule_campaign(brand, f"加推{i}", TASK), [who], local_at(brand, 2, 10))
    assert _queries_of_the_page(brand, brand.operator) == counts[brand.operator.username]


QUERY_BOUND = 45
