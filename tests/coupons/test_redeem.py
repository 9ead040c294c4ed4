from decimal import Decimal

import pytest

from coupons import services
from coupons.models import Coupon, CouponTemplate
from members.services import ingest_orders
from tests.coupons.factories import at, make_members, make_template

ISSUED_AT = at("2026-03-10 15:00")


def issue_one(brand, **template_fields):
    member = make_members(brand, 1)
    template = make_template(brand, **template_fields)
    with brand.scope():
        services.issue_coupons(brand.tenant, template, member, as_of=ISSUED_AT)
        return Coupon.objects.get(template=template)


def redeem(brand, code, order="SO-1", amount="100.00", as_of=ISSUED_AT, **kwargs):
    with brand.scope():
        return services.redeem_coupon(
            brand.tenant, code, order_external_id=order, amount=Decimal(amount), as_of=as_of, **kwargs
        )


def refused(brand, code, **kwargs):
    with pytest.raises(services.CouponError) as error:
        redeem(brand, code, **kwargs)
    return error.value


def test_a_redeemed_coupon_records_the_order_store_guide_and_amount_off(brand):
    coupon = issue_one(brand)
    redemption = redeem(brand, coupon.code, order="SO-1", amount="399.00", store=brand.store, guide=brand.guide)
    assert not redemption.replayed
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.REDEEMED
    assert (coupon.order_external_id, coupon.order_amount, coupon.benefit_amount) == ("SO-1", Decimal("399.00"), Decimal("66.00"))
    assert (coupon.redeemed_store_id, coupon.redeemed_guide_id, coupon.redeemed_at) == (brand.store.pk, brand.guide.pk, ISSUED_AT)


def test_the_code_may_be_typed_in_lower_case_with_a_dash_and_spaces(brand):
    coupon = issue_one(brand)
    typed = f" {coupon.code[:5].lower()}-{coupon.code[5:]} "
    assert redeem(brand, typed).coupon.pk == coupon.pk


def test_the_same_code_and_order_again_answers_the_same_redemption(brand):
    coupon = issue_one(brand)
    first = redeem(brand, coupon.code, order="SO-1", as_of=ISSUED_AT)
    again = redeem(brand, coupon.code, order="SO-1", as_of=at("2026-03-10 15:05"))
    assert again.replayed
    assert again.coupon.redeemed_at == first.coupon.redeemed_at == ISSUED_AT


def test_another_order_cannot_use_a_redeemed_coupon(brand):
    coupon = issue_one(brand)
    redeem(brand, coupon.code, order="SO-1")
    error = refused(brand, coupon.code, order="SO-2")
    assert error.code == "already_redeemed"
    assert "SO-1" in error.message


def test_an_unknown_code_is_refused_by_name(brand):
    error = refused(brand, "ABCDE-FGHJK")
    assert error.code == "unknown_code"
    assert "ABCDE-FGHJK" in error.message


def test_a_coupon_of_another_brand_is_an_unknown_code(brand, other_brand):
    theirs = issue_one(other_brand)
    assert refused(brand, theirs.code).code == "unknown_code"


def test_a_coupon_works_until_the_last_second_of_its_last_day_in_shanghai(brand):
    coupon = issue_one(brand, valid_days=1)
    assert coupon.expires_at == at("2026-03-11 00:00")
    assert redeem(brand, coupon.code, as_of=at("2026-03-10 23:59:59")).coupon.status == Coupon.Status.REDEEMED


def test_at_midnight_after_its_last_day_a_coupon_has_expired(brand):
    coupon = issue_one(brand, valid_days=1)
    error = refused(brand, coupon.code, as_of=at("2026-03-11 00:00"))
    assert error.code == "expired"
    assert "2026-03-11 00:00" in error.message


def test_a_fixed_date_coupon_cannot_be_used_before_midnight_of_its_first_day(brand):
    coupon = issue_one(
        brand, validity=CouponTemplate.Validity.FIXED, valid_days=None,
        valid_from=at("2026-03-12 00:00").date(), valid_until=at("2026-03-31 00:00").date(),
    )
    assert refused(brand, coupon.code, as_of=at("2026-03-11 23:59:59")).code == "not_yet_valid"
    assert redeem(brand, coupon.code, as_of=at("2026-03-12 00:00")).coupon.status == Coupon.Status.REDEEMED


def test_an_order_below_the_threshold_is_refused_with_both_amounts(brand):
    coupon = issue_one(brand, threshold=Decimal("299.00"))
    error = refused(brand, coupon.code, amount="298.99")
    assert error.code == "below_threshold"
    assert "298.99" in error.message and "299.00" in error.message
    assert redeem(brand, coupon.code, amount="299.00").coupon.status == Coupon.Status.REDEEMED


def test_a_store_coupon_is_refused_in_another_store_and_without_a_store(brand):
    coupon = issue_one(brand, stores=[brand.store])
    error = refused(brand, coupon.code, store=brand.store2)
    assert error.code == "wrong_store"
    assert brand.store2.code in error.message
    assert refused(brand, coupon.code).code == "store_required"
    assert redeem(brand, coupon.code, store=brand.store).coupon.status == Coupon.Status.REDEEMED


def test_a_category_coupon_needs_an_order_with_that_category(brand):
    coupon = issue_one(brand, categories=["shoes_bags"])
    assert refused(brand, coupon.code, categories=["apparel"]).code == "wrong_category"
    assert refused(brand, coupon.code).code == "categories_required"
    assert redeem(brand, coupon.code, categories=["apparel", "shoes_bags"]).coupon.status == Coupon.Status.REDEEMED


def test_a_discount_takes_its_share_off_up_to_the_cap(brand):
    coupon = issue_one(brand, type="discount", amount=None, discount_rate=Decimal("0.80"), discount_cap=Decimal("50.00"))
    assert redeem(brand, coupon.code, amount="100.00").coupon.benefit_amount == Decimal("20.00")
    capped = issue_one(brand, name="cap", type="discount", amount=None, discount_rate=Decimal("0.80"), discount_cap=Decimal("50.00"))
    assert redeem(brand, capped.code, order="SO-9", amount="1000.00").coupon.benefit_amount == Decimal("50.00")


def test_a_voided_coupon_cannot_be_redeemed(brand):
    coupon = issue_one(brand)
    with brand.scope():
        services.void_coupon(brand.tenant, coupon.code, as_of=ISSUED_AT, reason="发错了")
    assert refused(brand, coupon.code).code == "voided"


def test_a_redeemed_coupon_cannot_be_voided(brand):
    coupon = issue_one(brand)
    redeem(brand, coupon.code)
    with brand.scope(), pytest.raises(services.CouponError) as error:
        services.void_coupon(brand.tenant, coupon.code, as_of=ISSUED_AT)
    assert error.value.code == "not_voidable"


def test_undoing_a_redemption_makes_the_coupon_usable_again_and_twice_changes_nothing(brand):
    coupon = issue_one(brand)
    with brand.scope():
        services.claim_coupon(brand.tenant, coupon.code, as_of=ISSUED_AT)
    redeem(brand, coupon.code, order="SO-1")
    with brand.scope():
        undone = services.unredeem_coupon(brand.tenant, coupon.code, order_external_id="SO-1", as_of=at("2026-03-11 10:00"))
        again = services.unredeem_coupon(brand.tenant, coupon.code, order_external_id="SO-1", as_of=at("2026-03-11 11:00"))
    assert undone.status == again.status == Coupon.Status.CLAIMED
    assert again.unredeemed_at == at("2026-03-11 10:00")
    assert (again.order_amount, again.redeemed_at) == (None, None)
    assert redeem(brand, coupon.code, order="SO-2").coupon.order_external_id == "SO-2"


def test_a_refunded_order_gives_its_coupon_back(brand, django_capture_on_commit_callbacks):
    coupon = issue_one(brand)
    member = coupon.member
    order = {
        "external_id": "SO-77", "member_external_id": member.external_id, "placed_at": ISSUED_AT, "total": Decimal("300.00"),
    }
    with brand.scope():
        ingest_orders(brand.tenant, [(0, order)])
    redeem(brand, coupon.code, order="SO-77", amount="300.00")
    with brand.scope():
        with django_capture_on_commit_callbacks(execute=True):
            ingest_orders(brand.tenant, [(0, {**order, "status": "partially_refunded", "refunded_amount": Decimal("50.00")})])
        coupon.refresh_from_db()
        assert coupon.status == Coupon.Status.REDEEMED
        with django_capture_on_commit_callbacks(execute=True):
            ingest_orders(brand.tenant, [(0, {**order, "status": "refunded", "refunded_amount": Decimal("300.00")})])
        coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED
    assert coupon.unredeemed_at is not None


def test_the_expiry_run_expires_what_has_passed_and_running_it_twice_is_harmless(brand):
    members = make_members(brand, 3)
    short = make_template(brand, name="short", valid_days=1)
    long = make_template(brand, name="long", valid_days=30)
    with brand.scope():
        services.issue_coupons(brand.tenant, short, members, as_of=ISSUED_AT)
        services.issue_coupons(brand.tenant, long, members, as_of=ISSUED_AT)
        redeemed = Coupon.objects.filter(template=short).first()
    redeem(brand, redeemed.code)
    with brand.scope():
        assert services.expire_coupons(brand.tenant, as_of=at("2026-03-10 23:59:59")) == 0
        assert services.expire_coupons(brand.tenant, as_of=at("2026-03-11 00:00")) == 2
        assert services.expire_coupons(brand.tenant, as_of=at("2026-03-11 00:05")) == 0
        statuses = sorted(Coupon.objects.values_list("template__name", "status"))
    assert statuses.count(("short", "expired")) == 2
    assert statuses.count(("short", "redeemed")) == 1
    assert statuses.count(("long", "issued")) == 3


def test_members_holding_a_coupon_that_expires_within_n_days_are_found(brand):
    from coupons.queries import members_with_coupons_expiring_within

    members = make_members(brand, 2)
    soon = make_template(brand, name="soon", valid_days=5)
    later = make_template(brand, name="later", valid_days=60)
    with brand.scope():
        services.issue_coupons(brand.tenant, soon, members[:1], as_of=ISSUED_AT)
        services.issue_coupons(brand.tenant, later, members[1:], as_of=ISSUED_AT)
        found = set(members_with_coupons_expiring_within(brand.tenant, 7, as_of=ISSUED_AT).values_list("member_id", flat=True))
    assert found == {members[0]}
