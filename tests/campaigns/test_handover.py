"""The guide handover (离职继承) moves members through members.services.reassign_guide."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from campaigns.services import hand_over
from members.models import Member
from members.signals import members_changed
from scrm.models import Staff
from scrm.services import create_staff
from tests.members.test_api_members import make_members

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def changed():
    heard = []

    def listen(sender, tenant_id, member_ids, **kwargs):
        heard.append((tenant_id, sorted(member_ids)))

    members_changed.connect(listen, dispatch_uid="test_handover")
    yield heard
    members_changed.disconnect(dispatch_uid="test_handover")


def guides_of(brand, members):
    with brand.scope():
        return dict(Member.objects.filter(pk__in=[m.pk for m in members]).values_list("external_id", "owner_guide_id"))


def test_the_handover_moves_the_leaving_guides_members_with_their_updated_at_and_one_signal(
    brand, other_brand, changed, django_capture_on_commit_callbacks
):
    newcomer = create_staff(brand.tenant, "acme_new", "correct-horse-42", "新导购", Staff.Role.GUIDE, [brand.store])
    leaving = make_members(brand, ["L1", "L2"], guide=brand.guide)
    staying = make_members(brand, ["S1"], guide=brand.guide2)
    theirs = make_members(other_brand, ["L1"], guide=other_brand.guide)
    with brand.scope(), django_capture_on_commit_callbacks(execute=True):
        assert hand_over(brand.tenant, brand.guide, newcomer, AS_OF)["members"] == 2
    assert guides_of(brand, leaving + staying) == {"L1": newcomer.pk, "L2": newcomer.pk, "S1": brand.guide2.pk}
    assert guides_of(other_brand, theirs) == {"L1": other_brand.guide.pk}
    with brand.scope():
        assert set(Member.objects.filter(owner_guide=newcomer).values_list("updated_at", flat=True)) == {AS_OF}
    assert changed == [(brand.tenant.pk, sorted(m.pk for m in leaving))]
