"""The lifecycle pages of the dashboard."""
import json

from lifecycle import services
from lifecycle.models import StageRulesVersion

from .helpers import AS_OF, DAY, Shop, days_before


def _brand_with_history(brand):
    shop = Shop(brand)
    with brand.scope():
        lapsed = shop.member(home_store=brand.store, owner_guide=brand.guide)
        shop.order(lapsed, days_before(100))
        back = shop.member(home_store=brand.store2, owner_guide=brand.guide2)
        shop.order(back, days_before(120))
        shop.order(back, days_before(2))
    services.score_full(brand.tenant, AS_OF - 10 * DAY)
    services.score_full(brand.tenant, AS_OF)
    return lapsed, back


def test_the_lifecycle_page_shows_stages_flows_and_charts_data(brand):
    _brand_with_history(brand)
    page = brand.session(brand.operator).get("/lifecycle/?days=365")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="stage-dormant"' in html
    assert "vendor/echarts/echarts.min.js" in html
    charts = json.loads(html.split('id="lifecycle-charts" type="application/json">')[1].split("</script>")[0])
    assert {s["stage"]: s["count"] for s in charts["stages"]}["growth"] == 1
    assert {"from": "dormant", "to": "growth", "count": 1} in charts["flows"]
    assert page.context["flows"]["win_backs"] == 1


def test_a_guide_sees_the_lifecycle_of_their_own_members_only(brand):
    _brand_with_history(brand)
    page = brand.session(brand.guide).get("/lifecycle/")
    assert page.status_code == 200
    assert page.context["summary"]["total"] == 1
    assert "guide_id" not in page.context["form"].fields


def test_the_member_page_explains_the_stage(brand):
    lapsed, _back = _brand_with_history(brand)
    page = brand.session(brand.operator).get(f"/members/{lapsed.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="lifecycle-panel"' in html
    assert 'data-stage="dormant"' in html
    assert "100" in html.split('data-testid="stage-explanation">')[1].split("</p>")[0]


def test_the_member_list_shows_and_filters_by_stage(brand):
    lapsed, _back = _brand_with_history(brand)
    page = brand.session(brand.operator).get("/members/?stage=dormant")
    assert page.status_code == 200
    assert [m.pk for m in page.context["members"]] == [lapsed.pk]
    assert 'data-stage="dormant"' in page.content.decode()


def test_an_operator_previews_new_rules_before_saving_them(brand):
    _brand_with_history(brand)
    client = brand.session(brand.operator)
    values = {"dormant_after_days": 60, "churn_after_days": 95, "mature_min_orders": 3, "intro_churn_days": 180,
              "warning_days": 30, "aov_drop_pct": 50, "version": 0}
    preview = client.post("/lifecycle/rules/", {**values, "action": "dry_run"}, HTTP_HX_REQUEST="true")
    assert preview.status_code == 200
    assert preview.context["preview"]["moves"] == [{"from": "dormant", "to": "churned", "count": 1}]
    assert not StageRulesVersion.objects.unscoped().exists()
    saved = client.post("/lifecycle/rules/", {**values, "action": "save"})
    assert saved.status_code == 302
    assert services.current_rules(brand.tenant).dormant_after_days == 60
    page = client.get("/lifecycle/rules/")
    assert 'data-testid="rule-versions"' in page.content.decode()


def test_rules_that_contradict_each_other_are_shown_back_with_the_error(brand):
    client = brand.session(brand.operator)
    values = {"dormant_after_days": 90, "churn_after_days": 60, "mature_min_orders": 3, "intro_churn_days": 180,
              "warning_days": 30, "aov_drop_pct": 50, "action": "save"}
    page = client.post("/lifecycle/rules/", values)
    assert page.status_code == 200
    assert page.context["form"].errors["churn_after_days"]
    assert services.current_rules(brand.tenant).version == 0


def test_a_guide_reads_the_rules_but_cannot_change_them(brand):
    client = brand.session(brand.guide)
    page = client.get("/lifecycle/rules/")
    assert page.status_code == 200
    assert "Dry run" not in page.content.decode() and "试运行" not in page.content.decode()
    refused = client.post("/lifecycle/rules/", {"dormant_after_days": 80, "action": "save"})
    assert refused.status_code == 403


def test_the_period_shown_in_the_filter_is_the_period_counted(brand):
    _brand_with_history(brand)
    page = brand.session(brand.operator).get("/lifecycle/")
    html = page.content.decode()
    assert '<option value="30" selected>' in html
    since, until = page.context["since"], page.context["until"]
    assert (until - since).days == 29
