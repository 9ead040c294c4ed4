"""reassign_guide: the one writer of a member's guide, used by the guide handover."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members import services
from members.models import Member
from members.signals import members_changed

from .test_api_members import make_members

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def changed():
    heard = []

    def listen(sender, tenant_id, member_ids, **kwargs):
        heard.append((tenant_id, sorted(member_ids)))

    members_changed.connect(listen, dispatch_uid="test_reassign_guide")
    yield heard
    members_changed.disconnect(dispatch_uid="test_reassign_guide")


def guides_of(brand, members):
    with brand.scope():
        return dict(Member.objects.filter(pk__in=[m.pk for m in members]).values_list("external_id", "owner_guide_id"))


def test_it_moves_a_querysets_members_and_their_updated_at_and_tells_after_commit(
    brand, changed, django_capture_on_commit_callbacks
):
    theirs = make_members(brand, ["A1", "A2"], guide=brand.guide)
    already = make_members(brand, ["B1"], guide=brand.guide2)
    with brand.scope():
        before = Member.objects.get(pk=already[0].pk).updated_at
        with django_capture_on_commit_callbacks(execute=True):
            moved = services.reassign_guide(
                brand.tenant, Member.objects.filter(external_id__in=["A1", "A2", "B1"]), brand.guide2, as_of=AS_OF)
            assert changed == []
        assert moved == 2
        assert set(Member.objects.filter(pk__in=[m.pk for m in theirs]).values_list("updated_at", flat=True)) == {AS_OF}
        assert Member.objects.get(pk=already[0].pk).updated_at == before
    assert guides_of(brand, theirs + already) == {"A1": brand.guide2.pk, "A2": brand.guide2.pk, "B1": brand.guide2.pk}
    assert changed == [(brand.tenant.pk, sorted(m.pk for m in theirs))]


def test_it_takes_ids_and_none_takes_the_guide_away(brand, changed, django_capture_on_commit_callbacks):
    made = make_members(brand, ["A1", "A2", "A3"], guide=brand.guide)
    with brand.scope(), django_capture_on_commit_callbacks(execute=True):
        assert services.reassign_guide(brand.tenant, [made[0].pk, made[2].pk], None, as_of=AS_OF) == 2
    assert guides_of(brand, made) == {"A1": None, "A2": brand.guide.pk, "A3": None}
    assert changed == [(brand.tenant.pk, [made[0].pk, made[2].pk])]


def test_nothing_to_move_writes_nothing_and_tells_nobody(brand, changed, django_capture_on_commit_callbacks):
    made = make_members(brand, ["A1"], guide=brand.guide)
    with brand.scope(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.reassign_guide(brand.tenant, [made[0].pk], brand.guide, as_of=AS_OF) == 0
    assert callbacks == [] and changed == []


def test_it_runs_as_many_queries_for_fifty_members_as_for_five(brand):
    few = make_members(brand, [f"F{i}" for i in range(5)], guide=brand.guide)
    many = make_members(brand, [f"M{i}" for i in range(50)], guide=brand.guide)
    counts = []
    for members in (few, many):
        with brand.scope(), CaptureQueriesContext(connection) as queries:
            services.reassign_guide(brand.tenant, [m.pk for m in members], brand.guide2, as_of=AS_OF + timedelta(1))
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_another_brands_members_and_guides_are_out_of_reach(brand, other_brand):
    theirs = make_members(other_brand, ["T1"], guide=other_brand.guide)
    mine = make_members(brand, ["M1"], guide=brand.guide)
    with brand.scope():
        assert services.reassign_guide(brand.tenant, [theirs[0].pk, mine[0].pk], brand.guide2, as_of=AS_OF) == 1
        with pytest.raises(ValueError):
            services.reassign_guide(brand.tenant, [mine[0].pk], other_brand.guide, as_of=AS_OF)
    assert guides_of(other_brand, theirs) == {"T1": other_brand.guide.pk}
    assert guides_of(brand, mine) == {"M1": brand.guide2.pk}

