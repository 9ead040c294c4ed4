"""The guide's task cards: the member's tags, each card's own forms, and a list that costs the same
few queries however many tasks it holds."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import services
from campaigns.models import GuideTask
from members.models import Member
from tagging import services as tagging

from .helpers import campaign, full_run, member

pytestmark = pytest.mark.django_db

TASK = {"delay_days": 0, "action": "guide_task", "script": "{name}您好"}


def make_tasks(brand, names):
    now = timezone.now()
    with brand.scope():
        for name in names:
            member(brand, name=name, joined_at=now - timedelta(days=10))
        campaign(brand, [TASK])
        run = full_run(brand, now - timedelta(hours=1))
        services.enrol_from_run(brand.tenant, run.pk, now - timedelta(hours=1))
        services.run_due_steps(brand.tenant, now - timedelta(minutes=30))
        return {t.member.name: t for t in GuideTask.objects.select_related("member")}


def test_a_card_shows_the_members_tags_by_name_in_their_colours_and_only_theirs(brand):
    tasks = make_tasks(brand, ["林晓", "王芳"])
    with brand.scope():
        group = tagging.save_tag_group(brand.tenant, {"name": "兴趣"})
        shoes = tagging.save_tag(brand.tenant, {"group": group, "name": "鞋履", "colour": "#ff0000"})
        coats = tagging.save_tag(brand.tenant, {"group": group, "name": "外套", "colour": "#00aa00"})
        tagging.apply_tags(brand.tenant, Member.objects.filter(name="林晓"), add=[shoes.pk, coats.pk])
    html = brand.session(brand.guide).get("/guide/").content.decode()
    lin = html[html.index(f'id="task-{tasks["林晓"].pk}"'):]
    lin = lin[:lin.index("</article>")]
    wang = html[html.index(f'id="task-{tasks["王芳"].pk}"'):]
    wang = wang[:wang.index("</article>")]
    assert 'style="background:#00aa00">外套</span>' in lin and 'style="background:#ff0000">鞋履</span>' in lin
    assert lin.index("外套") < lin.index("鞋履")
    assert "外套" not in wang and "鞋履" not in wang


def test_each_cards_forms_act_on_that_task_only(brand):
    tasks = make_tasks(brand, ["林晓", "王芳"])
    client = brand.session(brand.guide)
    html = client.get("/guide/").content.decode()
    for task in tasks.values():
        assert html.count(f'action="/guide/tasks/{task.pk}/outcome/"') == 2
        assert html.count(f'action="/guide/tasks/{task.pk}/snooze/"') == 1
    lin = tasks["林晓"]
    answer = client.post(f"/guide/tasks/{lin.pk}/outcome/", {"outcome": "sent"}, HTTP_HX_REQUEST="true")
    card = answer.content.decode()
    assert f'id="task-{lin.pk}"' in card and 'data-status="sent"' in card
    with brand.scope():
        assert GuideTask.objects.get(pk=tasks["王芳"].pk).status == "open"


def test_the_task_list_costs_the_same_queries_for_three_tasks_as_for_thirty(brand):
    tasks = make_tasks(brand, [f"会员{i}" for i in range(30)])
    client = brand.session(brand.guide)
    client.get("/guide/")
    with CaptureQueriesContext(connection) as many:
        assert client.get("/guide/").content.decode().count('data-testid="task-card"') == 30
    with brand.scope():
        GuideTask.objects.filter(pk__in=[t.pk for t in list(tasks.values())[3:]]).update(status="sent")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/guide/").content.decode().count('data-testid="task-card"') == 3
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_store_manager_sees_a_guides_open_tasks_as_the_same_cards(brand):
    tasks = make_tasks(brand, ["林晓"])
    html = brand.session(brand.manager).get(f"/campaigns/tasks/?guide_id={brand.guide.pk}").content.decode()
    lin = tasks["林晓"]
    assert f'id="task-{lin.pk}"' in html and "林晓您好" in html
    assert f'action="/guide/tasks/{lin.pk}/outcome/"' in html and "已回复" in html and "复制话术" in html
