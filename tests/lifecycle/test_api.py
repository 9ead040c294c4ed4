"""The lifecycle endpoints: what an integrator or the dashboard reads and changes."""
import json

from lifecycle import services
from lifecycle.models import StageChange

from ..api_cases import assert_error
from .helpers import AS_OF, DAY, Shop, days_before


def _put(client, url, payload):
    return client.put(url, data=json.dumps(payload), content_type="application/json")


def _post(client, url, payload):
    return client.post(url, data=json.dumps(payload), content_type="application/json")


def _scored(brand):
    """A brand with a lapsed buyer (dormant), a fresh buyer (growth), a regular (maturity)."""
    shop = Shop(brand)
    with brand.scope():
        lapsed = shop.member(home_store=brand.store, owner_guide=brand.guide)
        shop.order(lapsed, days_before(130))
        shop.order(lapsed, days_before(100))
        fresh = shop.member(joined_days_ago=20, home_store=brand.store2, owner_guide=brand.guide2)
        shop.order(fresh, days_before(3))
        regular = shop.member(home_store=brand.store, owner_guide=brand.guide)
        for days in (5, 40, 70):
            shop.order(regular, days_before(days))
    services.score_full(brand.tenant, AS_OF - 30 * DAY)
    services.score_full(brand.tenant, AS_OF)
    return lapsed, fresh, regular


def test_the_summary_counts_members_per_stage_with_warnings(brand):
    _scored(brand)
    body = brand.api().get("/api/v1/lifecycle/summary/").json()
    counts = {s["stage"]: (s["count"], s["warning"]) for s in body["stages"]}
    assert counts == {"introduction": (0, 0), "growth": (1, 0), "maturity": (1, 0), "dormant": (1, 0), "churned": (0, 0)}
    assert [s["stage"] for s in body["stages"]] == ["introduction", "growth", "maturity", "dormant", "churned"]
    assert body["total"] == 3
    assert body["last_run"]["members_scored"] == 3


def test_the_summary_filters_by_store_and_a_guide_sees_only_their_members(brand):
    _scored(brand)
    by_store = brand.api().get(f"/api/v1/lifecycle/summary/?store_id={brand.store2.pk}").json()
    assert by_store["total"] == 1
    as_guide = brand.session(brand.guide).get("/api/v1/lifecycle/summary/").json()
    assert as_guide["total"] == 2
    assert {s["stage"]: s["count"] for s in as_guide["stages"]}["growth"] == 0


def test_transitions_show_the_moves_of_a_period(brand):
    _scored(brand)
    day = (AS_OF - 30 * DAY).date()
    body = brand.api().get(f"/api/v1/lifecycle/transitions/?since={day}&until={AS_OF.date()}").json()
    assert body["matrix"]["growth"]["dormant"] == 1
    assert body["entered"]["introduction"] == 0
    assert {"from": "growth", "to": "dormant", "count": 1} in body["flows"]
    assert body["win_backs"] == 0
    refused = brand.api().get("/api/v1/lifecycle/transitions/?since=2025-07-01&until=2025-06-01")
    assert_error(refused, 400, "since")


def test_runs_are_listed_newest_first_with_their_changes(brand):
    _scored(brand)
    runs = brand.api().get("/api/v1/lifecycle/runs/").json()["results"]
    assert [r["as_of"][:10] for r in runs] == [str(AS_OF.date()), str((AS_OF - 30 * DAY).date())]
    # The fresh buyer joined between the two runs; the regular's third order came in between too.
    assert runs[0]["changes"] == {"growth→dormant": 1, "growth→maturity": 1, "new→growth": 1}
    assert runs[0]["changes_total"] == 3
    assert runs[0]["members_scored"] == 3
    assert runs[1]["members_scored"] == 2
    assert runs[1]["changes"] == {"new→growth": 2}


def test_a_members_stage_says_why_with_the_values_compared(brand):
    lapsed, _fresh, _regular = _scored(brand)
    body = brand.api().get(f"/api/v1/members/{lapsed.pk}/stage/").json()
    assert body["stage"] == "dormant"
    assert body["churn_warning"] is False
    assert body["since"].startswith(str(AS_OF.date()))
    explanation = body["explanation"]
    assert explanation["rule"] == "dormant"
    assert explanation["compared"] == [{
        "metric": "days_since_last_order", "value": 100, "operator": ">=", "threshold": 90,
        "parameter": "dormant_after_days",
    }]
    assert "100" in explanation["text"]
    assert [(h["from_stage"], h["to_stage"]) for h in body["history"]] == [("growth", "dormant"), ("", "growth")]


def test_a_guide_cannot_read_the_stage_of_another_guides_member(brand):
    _lapsed, fresh, _regular = _scored(brand)
    response = brand.session(brand.guide).get(f"/api/v1/members/{fresh.pk}/stage/")
    assert_error(response, 404)


def test_the_member_list_filters_by_stage_and_churn_warning(brand):
    lapsed, fresh, regular = _scored(brand)
    shop = Shop(brand)
    with brand.scope():
        warned = shop.member()
        shop.order(warned, days_before(65))
    services.score_full(brand.tenant, AS_OF)
    api = brand.api()
    dormant = api.get("/api/v1/members/?stage=dormant").json()["results"]
    assert [m["id"] for m in dormant] == [lapsed.pk]
    flagged = api.get("/api/v1/members/?churn_warning=true").json()["results"]
    assert [m["id"] for m in flagged] == [warned.pk]
    growth_unflagged = api.get("/api/v1/members/?stage=growth&churn_warning=false").json()["results"]
    assert [m["id"] for m in growth_unflagged] == [fresh.pk]
    assert_error(api.get("/api/v1/members/?stage=sleeping"), 400, "stage")
    assert regular.pk


def test_rules_are_read_and_saved_as_a_new_version(brand):
    api = brand.api()
    rules = api.get("/api/v1/lifecycle/rules/").json()
    assert rules["dormant_after_days"] == 90 and rules["version"] == 0
    assert rules["defaults"]["churn_after_days"] == 180
    saved = _put(api, "/api/v1/lifecycle/rules/", {**{k: rules[k] for k in rules["defaults"]}, "mature_min_orders": 4, "version": 0})
    assert saved.status_code == 200, saved.content
    assert saved.json()["mature_min_orders"] == 4 and saved.json()["version"] == 1
    stale = _put(api, "/api/v1/lifecycle/rules/", {**{k: rules[k] for k in rules["defaults"]}, "version": 0})
    assert_error(stale, 409)
    history = api.get("/api/v1/lifecycle/rules/history/").json()["results"]
    assert history[0]["previous"]["mature_min_orders"] == 3 and history[0]["values"]["mature_min_orders"] == 4
    assert history[0]["changed_by"].startswith("api-key:")


def test_rules_that_contradict_each_other_are_refused_by_field(brand):
    body = {"dormant_after_days": 90, "churn_after_days": 60, "mature_min_orders": 3, "intro_churn_days": 180,
            "warning_days": 60, "aov_drop_pct": 50}
    assert_error(_put(brand.api(), "/api/v1/lifecycle/rules/", body), 400, "churn_after_days")


def test_only_owners_and_operators_change_the_rules(brand):
    body = {"dormant_after_days": 80, "churn_after_days": 180, "mature_min_orders": 3, "intro_churn_days": 180,
            "warning_days": 60, "aov_drop_pct": 50}
    assert_error(_put(brand.session(brand.guide), "/api/v1/lifecycle/rules/", body), 403)
    assert _put(brand.session(brand.operator), "/api/v1/lifecycle/rules/", body).status_code == 200


def test_a_dry_run_previews_moves_without_saving(brand):
    _scored(brand)
    body = {"dormant_after_days": 60, "churn_after_days": 95, "mature_min_orders": 3, "intro_churn_days": 180,
            "warning_days": 30, "aov_drop_pct": 50}
    preview = _post(brand.api(), "/api/v1/lifecycle/rules/dry-run/", body).json()
    assert {"from": "dormant", "to": "churned", "count": 1} in preview["moves"]
    assert preview["members"] == 3
    assert brand.api().get("/api/v1/lifecycle/rules/").json()["version"] == 0


def test_another_brands_lifecycle_is_invisible(brand, other_brand):
    lapsed, _fresh, _regular = _scored(brand)
    rival = other_brand.api()
    assert_error(rival.get(f"/api/v1/members/{lapsed.pk}/stage/"), 404)
    assert rival.get("/api/v1/lifecycle/summary/").json()["total"] == 0
    assert rival.get("/api/v1/lifecycle/runs/").json()["results"] == []
    run = brand.api().get("/api/v1/lifecycle/runs/").json()["results"][0]
    assert_error(rival.get(f"/api/v1/lifecycle/runs/{run['id']}/"), 404)
    day = (AS_OF - 30 * DAY).date()
    assert rival.get(f"/api/v1/lifecycle/transitions/?since={day}&until={AS_OF.date()}").json()["changes"] == 0
    assert_error(rival.get(f"/api/v1/lifecycle/summary/?store_id={brand.store.pk}"), 400, "store_id")
    _put(rival, "/api/v1/lifecycle/rules/", {"dormant_after_days": 30, "churn_after_days": 60, "mature_min_orders": 2,
                                             "intro_churn_days": 30, "warning_days": 10, "aov_drop_pct": 10})
    assert brand.api().get("/api/v1/lifecycle/rules/").json()["version"] == 0
    assert rival.get("/api/v1/lifecycle/rules/history/").json()["results"][0]["version"] == 1
    assert StageChange.objects.unscoped().filter(tenant=other_brand.tenant).count() == 0
