from decimal import Decimal

import pytest

from coupons import services
from coupons.models import Coupon, CODE_ALPHABET, CODE_LENGTH, CouponTemplate
from tests.coupons.factories import at, make_members, make_template

NOW = at("2026-03-10 15:00")


def issue(brand, template, members, **kwargs):
    with brand.scope():
        return services.issue_coupons(brand.tenant, template, members, as_of=kwargs.pop("as_of", NOW), **kwargs)


def test_each_member_gets_one_coupon_with_a_short_unguessable_code(brand):
    members = make_members(brand, 5)
    template = make_template(brand)
    result = issue(brand, template, members)
    assert result.issued == 5
    with brand.scope():
        coupons = list(Coupon.objects.filter(template=template))
        template.refresh_from_db()
    assert sorted(c.member_id for c in coupons) == sorted(members)
    assert len({c.code for c in coupons}) == 5
    for coupon in coupons:
        assert len(coupon.code) == CODE_LENGTH and set(coupon.code) <= set(CODE_ALPHABET)
        assert coupon.status == Coupon.Status.ISSUED
        assert coupon.display_code == f"{coupon.code[:5]}-{coupon.code[5:]}"
    assert template.issued_count == 5


def test_a_coupon_valid_for_90_days_ends_at_the_midnight_after_its_90th_day_in_shanghai(brand):
    member = make_members(brand, 1)
    template = make_template(brand, valid_days=90)
    issue(brand, template, member, as_of=at("2026-03-10 23:30"))
    with brand.scope():
        coupon = Coupon.objects.get(template=template)
    assert coupon.valid_from == at("2026-03-10 23:30")
    assert coupon.expires_at == at("2026-06-08 00:00")


def test_fixed_dates_run_from_the_first_midnight_to_the_midnight_after_the_last_day(brand):
    member = make_members(brand, 1)
    template = make_template(
        brand, validity=CouponTemplate.Validity.FIXED, valid_days=None,
        valid_from=at("2026-04-01 00:00").date(), valid_until=at("2026-04-30 00:00").date(),
    )
    issue(brand, template, member)
    with brand.scope():
        coupon = Coupon.objects.get(template=template)
    assert coupon.valid_from == at("2026-04-01 00:00")
    assert coupon.expires_at == at("2026-05-01 00:00")


def test_a_member_at_the_limit_gets_no_more(brand):
    members = make_members(brand, 3)
    template = make_template(brand, per_member_limit=2)
    issue(brand, template, members[:1])
    issue(brand, template, members[:1])
    third = issue(brand, template, members)
    assert third.issued == 2
    assert third.over_limit == 1
    with brand.scope():
        assert Coupon.objects.filter(member_id=members[0]).count() == 2


def test_no_more_coupons_are_issued_than_the_stock(brand):
    members = make_members(brand, 10)
    template = make_template(brand, total_stock=4)
    result = issue(brand, template, members)
    assert (result.issued, result.out_of_stock) == (4, 6)
    again = issue(brand, template, members)
    assert (again.issued, again.out_of_stock) == (0, 6)
    with brand.scope():
        template.refresh_from_db()
        assert Coupon.objects.filter(template=template).count() == 4
    assert template.remaining_stock == 0


def test_a_retried_campaign_step_issues_nothing_twice_even_without_a_limit(brand):
    members = make_members(brand, 3)
    template = make_template(brand, per_member_limit=None)
    first = issue(brand, template, members, source=Coupon.Source.CAMPAIGN, key_prefix="campaign:7:step:2", campaign_id=7)
    retry = issue(brand, template, members, source=Coupon.Source.CAMPAIGN, key_prefix="campaign:7:step:2", campaign_id=7)
    other_step = issue(brand, template, members, source=Coupon.Source.CAMPAIGN, key_prefix="campaign:7:step:3", campaign_id=7)
    assert (first.issued, retry.issued, retry.already_issued, other_step.issued) == (3, 0, 3, 3)


def test_a_segment_is_passed_as_a_queryset_or_a_callable(brand):
    from members.models import Member

    members = make_members(brand, 4)
    template = make_template(brand, per_member_limit=None)
    with brand.scope():
        by_queryset = services.issue_coupons(brand.tenant, template, Member.objects.filter(pk__in=members[:2]), as_of=NOW)
        by_callable = services.issue_coupons(
            brand.tenant, template, lambda: Member.objects.filter(pk__in=members[2:]).values_list("pk", flat=True), as_of=NOW
        )
    assert (by_queryset.issued, by_callable.issued) == (2, 2)


def test_the_count_before_issuing_says_how_many_would_get_one_and_issues_nothing(brand):
    members = make_members(brand, 6)
    template = make_template(brand, total_stock=5, per_member_limit=1)
    issue(brand, template, members[:1])
    with brand.scope():
        counts = services.count_issuable(brand.tenant, template, members)
        assert Coupon.objects.count() == 1
    assert (counts["issued"], counts["over_limit"], counts["out_of_stock"]) == (4, 1, 1)


def test_an_inactive_template_or_one_whose_dates_have_passed_issues_nothing(brand):
    members = make_members(brand, 1)
    inactive = make_template(brand, active=False)
    ended = make_template(
        brand, validity=CouponTemplate.Validity.FIXED, valid_days=None,
        valid_from=at("2026-01-01 00:00").date(), valid_until=at("2026-03-09 00:00").date(),
    )
    with pytest.raises(services.CouponError) as refused:
        issue(brand, inactive, members)
    assert refused.value.code == "template_inactive"
    with pytest.raises(services.CouponError) as refused:
        issue(brand, ended, members)
    assert refused.value.code == "template_ended"
    with brand.scope():
        assert Coupon.objects.count() == 0


def test_coupons_remember_the_members_store_and_guide_at_issue(brand):
    members = make_members(brand, 1)
    from members.services import upsert_members

    with brand.scope():
        upsert_members(brand.tenant, [(0, {"external_id": "M0000", "home_store": brand.store, "owner_guide": brand.guide})])
    template = make_template(brand)
    issue(brand, template, members)
    with brand.scope():
        coupon = Coupon.objects.get()
    assert (coupon.store_id, coupon.guide_id) == (brand.store.pk, brand.guide.pk)


def test_a_template_needs_what_its_type_takes_off(brand):
    from django.core.exceptions import ValidationError

    with brand.scope():
        for fields, field in [
            ({"type": "cash_off", "amount": None}, "amount"),
            ({"type": "discount", "discount_rate": None}, "discount_rate"),
            ({"type": "gift", "gift": ""}, "gift"),
            ({"validity": "days", "valid_days": None}, "valid_days"),
        ]:
            template = CouponTemplate(tenant=brand.tenant, name="x", **{"type": "cash_off", "amount": Decimal("5"), "valid_days": 3, **fields})
            with pytest.raises(ValidationError) as error:
                template.full_clean(exclude=["tenant"])
            assert field in error.value.message_dict
