"""Issuing coupons to a segment from its page: once per member, never twice, within the stock."""
import re
from decimal import Decimal

import pytest

from coupons.models import Coupon, CouponTemplate
from scrm.models import IdempotencyRecord
from tagging import tasks
from tagging.models import Segment

from .conftest import add_members

pytestmark = pytest.mark.django_db

SHANGHAI_ONLY = {"field": "city", "op": "eq", "value": "上海"}


def setup(brand, stock=None, limit=1, people=3):
    add_members(brand, [{"external_id": f"S{i}", "name": f"会员{i}", "city": "上海"} for i in range(people)]
                + [{"external_id": "X1", "name": "杭州会员", "city": "杭州"}])
    with brand.scope():
        segment = Segment.objects.create(tenant=brand.tenant, name="上海会员", rules=SHANGHAI_ONLY)
        template = CouponTemplate(tenant=brand.tenant, name="¥30 关怀券", type="cash_off", amount=Decimal("30.00"),
                                  validity="days", valid_days=30, total_stock=stock, per_member_limit=limit)
        template.full_clean(exclude=["tenant"])
        template.save()
    return segment, template


def confirm_form(client, segment, template):
    """Open the confirm step and return the fields its form would send."""
    page = client.get(f"/tagging/segments/{segment.pk}/coupons/", {"template": template.pk}).content.decode()
    run = re.search(r'name="run" value="([0-9a-f]{32})"', page).group(1)
    return page, {"template": template.pk, "run": run}


def issued(brand, template):
    with brand.scope():
        return sorted(Coupon.objects.filter(template=template).values_list("member__external_id", flat=True))


def test_the_confirm_step_shows_the_count_and_the_stock_left(brand):
    segment, template = setup(brand, stock=10)
    page, _fields = confirm_form(brand.session(brand.operator), segment, template)
    assert re.search(r'data-testid="members">3<', page) and re.search(r'data-testid="stock">10<', page)


def test_confirming_issues_one_coupon_to_each_member_and_says_so(brand, django_capture_on_commit_callbacks):
    segment, template = setup(brand)
    client = brand.session(brand.operator)
    _page, fields = confirm_form(client, segment, template)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/tagging/segments/{segment.pk}/coupons/", fields)
    assert issued(brand, template) == ["S0", "S1", "S2"]
    result = client.get(answer["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(r'data-testid="result-line">3 issued · 0 skipped because of the per-member limit · 0 not', result)
    with brand.scope():
        assert CouponTemplate.objects.get(pk=template.pk).issued_count == 3


def test_a_second_submit_of_the_same_form_issues_nothing_more(brand, django_capture_on_commit_callbacks):
    segment, template = setup(brand, limit=None)
    client = brand.session(brand.operator)
    _page, fields = confirm_form(client, segment, template)
    for _click in range(2):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            client.post(f"/tagging/segments/{segment.pk}/coupons/", fields)
    assert len(callbacks) == 0  # the second click found the run and queued nothing
    assert issued(brand, template) == ["S0", "S1", "S2"]


def test_a_retried_task_issues_nothing_twice(brand, django_capture_on_commit_callbacks):
    segment, template = setup(brand, limit=None)
    client = brand.session(brand.operator)
    _page, fields = confirm_form(client, segment, template)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/tagging/segments/{segment.pk}/coupons/", fields)
    with brand.scope():
        run = IdempotencyRecord.objects.get(key=fields["run"])
        # A worker that died before recording the result: the task runs again from "running".
        IdempotencyRecord.objects.filter(pk=run.pk).update(response={**run.response, "status": "running"})
    again = tasks.issue_segment_coupons(brand.tenant.pk, run.pk)
    assert (again["status"], again["issued"]) == ("done", 3)
    assert issued(brand, template) == ["S0", "S1", "S2"]


def test_the_stock_and_the_per_member_limit_hold(brand, django_capture_on_commit_callbacks):
    segment, template = setup(brand, stock=2)
    client = brand.session(brand.operator)
    _page, fields = confirm_form(client, segment, template)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/tagging/segments/{segment.pk}/coupons/", fields)
    assert len(issued(brand, template)) == 2
    with brand.scope():
        run = IdempotencyRecord.objects.get(key=fields["run"]).response
        CouponTemplate.objects.filter(pk=template.pk).update(total_stock=10)
    assert (run["issued"], run["out_of_stock"]) == (2, 1)
    # A new run: the two who hold one are at their limit of one; the third gets one now.
    _page, fields = confirm_form(client, segment, template)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/tagging/segments/{segment.pk}/coupons/", fields)
    with brand.scope():
        run = IdempotencyRecord.objects.get(key=fields["run"]).response
    assert (run["issued"], run["over_limit"], run["out_of_stock"]) == (1, 2, 0)
    assert len(issued(brand, template)) == 3


def test_an_inactive_template_is_refused_with_a_message(brand):
    segment, template = setup(brand)
    client = brand.session(brand.operator)
    _page, fields = confirm_form(client, segment, template)
    with brand.scope():
        CouponTemplate.objects.filter(pk=template.pk).update(active=False)
    answer = client.post(f"/tagging/segments/{segment.pk}/coupons/", fields, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "The template ¥30 关怀券 is not active." in answer.content.decode() and issued(brand, template) == []


def test_another_brands_segment_or_template_is_not_found(brand, other_brand):
    segment, template = setup(brand)
    their_segment, their_template = setup(other_brand)
    client = brand.session(brand.operator)
    _page, fields = confirm_form(client, segment, template)
    assert client.get(f"/tagging/segments/{their_segment.pk}/coupons/").status_code == 404
    assert client.get(f"/tagging/segments/{segment.pk}/coupons/", {"template": their_template.pk}).status_code == 404
    assert client.post(f"/tagging/segments/{their_segment.pk}/coupons/", fields).status_code == 404
    assert client.post(f"/tagging/segments/{segment.pk}/coupons/", {**fields, "template": their_template.pk}).status_code == 404
    assert issued(other_brand, their_template) == []


def test_guides_cannot_issue_to_a_segment(brand):
    segment, template = setup(brand)
    assert brand.session(brand.guide).get(f"/tagging/segments/{segment.pk}/coupons/").status_code == 403
