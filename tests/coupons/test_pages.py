from decimal import Decimal

from coupons import services
from coupons.models import Coupon, CouponTemplate
from tests.coupons.factories import at, make_members, make_template


def test_an_operator_creates_a_template_from_the_form(brand):
    client = brand.session(brand.operator)
    response = client.post("/coupons/templates/new/", {
        "name": "满299减66", "type": "cash_off", "amount": "66", "threshold": "299", "validity": "days",
        "valid_days": "90", "per_member_limit": "1", "stores": [brand.store.pk], "categories": "apparel， shoes_bags",
        "active": "on",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    with brand.scope():
        template = CouponTemplate.objects.get()
        stores = list(template.stores.all())
    assert (template.amount, template.categories, stores) == (Decimal("66"), ["apparel", "shoes_bags"], [brand.store])
    page = client.get("/coupons/templates/").content.decode()
    assert "满299减66" in page


def test_the_template_form_names_the_missing_field(brand):
    response = brand.session(brand.operator).post("/coupons/templates/new/", {"name": "八折", "type": "discount", "validity": "days", "valid_days": "30", "threshold": "0"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "A discount coupon needs its rate" in response.content.decode()


def test_issuing_from_the_dashboard_counts_first_then_issues(brand):
    make_members(brand, 3)
    template = make_template(brand, total_stock=2)
    client = brand.session(brand.operator)
    counted = client.post(f"/coupons/templates/{template.pk}/issue/", {"members": "M0000\nM0001\nM0002"}, HTTP_ACCEPT_LANGUAGE="en")
    page = counted.content.decode()
    assert "2 members would get a coupon" in page and "1 would get none" in page
    with brand.scope():
        assert Coupon.objects.count() == 0
    issued = client.post(f"/coupons/templates/{template.pk}/issue/", {"members": "M0000\nM0001\nM0002", "confirm": "1"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "2 coupons issued" in issued.content.decode()
    with brand.scope():
        assert Coupon.objects.count() == 2


def test_issuing_to_an_unknown_member_says_which_line(brand):
    template = make_template(brand)
    response = brand.session(brand.operator).post(f"/coupons/templates/{template.pk}/issue/", {"members": "NOBODY"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "NOBODY" in response.content.decode()


def _coupon(brand, **fields):
    members = make_members(brand, 1)
    template = make_template(brand, valid_days=3650, **fields)
    with brand.scope():
        services.issue_coupons(brand.tenant, template, members, as_of=at("2026-03-01 10:00"))
        return Coupon.objects.get(template=template)


def test_a_clerk_redeems_on_the_phone_form_and_a_second_try_says_why_not(brand):
    coupon = _coupon(brand, threshold=Decimal("100"))
    client = brand.session(brand.guide)
    form = client.get("/coupons/redeem/").content.decode()
    assert 'name="code"' in form and brand.store.name in form
    ok = client.post("/coupons/redeem/", {"code": coupon.display_code.lower(), "order_external_id": "POS-1", "amount": "150", "store": brand.store.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert 'data-testid="redeem-ok"' in ok.content.decode()
    again = client.post("/coupons/redeem/", {"code": coupon.code, "order_external_id": "POS-2", "amount": "150", "store": brand.store.pk}, HTTP_ACCEPT_LANGUAGE="en")
    page = again.content.decode()
    assert 'data-reason="already_redeemed"' in page and "POS-1" in page


def test_the_redeem_form_names_a_threshold_that_is_not_met(brand):
    coupon = _coupon(brand, threshold=Decimal("100"))
    response = brand.session(brand.guide).post("/coupons/redeem/", {"code": coupon.code, "order_external_id": "POS-1", "amount": "99", "store": brand.store.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert 'data-reason="below_threshold"' in response.content.decode()


def test_search_finds_a_coupon_by_code_and_hides_another_guides_members(brand):
    coupon = _coupon(brand)
    cell = f'<td class="mono">{coupon.display_code}</td>'
    operator = brand.session(brand.operator).get("/coupons/search/", {"q": coupon.display_code}).content.decode()
    assert cell in operator
    guide = brand.session(brand.guide).get("/coupons/search/", {"q": coupon.display_code}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert cell not in guide and "No coupon matches." in guide


def test_results_page_shows_the_rate_and_feeds_the_chart(brand):
    coupon = _coupon(brand)
    with brand.scope():
        services.redeem_coupon(brand.tenant, coupon.code, order_external_id="P1", amount=Decimal("88"), as_of=at("2026-03-02 10:00"))
    page = brand.session(brand.operator).get("/coupons/results/").content.decode()
    assert "100.0%" in page
    assert 'id="coupon-chart-data"' in page and "vendor/echarts/echarts.min.js" in page
    assert brand.session(brand.guide).get("/coupons/results/").status_code == 403


def test_another_brands_template_is_a_404_on_every_page(brand, other_brand):
    theirs = make_template(other_brand)
    client = brand.session(brand.operator)
    assert client.get(f"/coupons/templates/{theirs.pk}/").status_code == 404
    assert client.get(f"/coupons/templates/{theirs.pk}/issue/").status_code == 404
    assert theirs.name not in client.get("/coupons/templates/").content.decode()


def test_the_pages_speak_chinese_by_default(brand):
    page = brand.session(brand.operator).get("/coupons/redeem/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'lang="zh-hans"' in page
