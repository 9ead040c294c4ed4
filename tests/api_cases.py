"""Generic API test cases.

An endpoint's test class mixes in the cases it needs and declares only its URL, the fields of
its contract and how to make sample data; the cases here test list, retrieve, create, update,
bulk upserts, idempotency, tenant isolation and role visibility the same way for every endpoint.

Objects are made with the same natural keys (external ids, codes) in both brands on purpose, so
that a query or an upsert that forgets the tenant mixes them up and a case fails.
"""
import json

from django.db import connection
from django.test.utils import CaptureQueriesContext

ERROR_KEYS = {"status", "code", "message"}


def assert_error(response, status, field=None):
    """The one error shape: {"error": {status, code, message[, fields]}}; ``field`` must be named."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert ERROR_KEYS <= set(error) <= ERROR_KEYS | {"fields"}, error
    assert error["status"] == status
    assert error["message"]
    if field is not None:
        assert field in error["fields"], error
        assert error["fields"][field]
    return error


def post_json(client, url, payload, **headers):
    return client.post(url, data=json.dumps(payload), content_type="application/json", **headers)


def patch_json(client, url, payload):
    return client.patch(url, data=json.dumps(payload), content_type="application/json")


class EndpointCase:
    """What every endpoint's test declares."""

    url = None
    contract_fields = ()
    # Queries of one list request with an API key; the same for 3 rows and for 13.
    list_queries = None
    # Tenant-owned model whose rows the endpoint lists (scoped: count inside brand.scope()).
    model = None

    def make(self, brand, count):
        """Make ``count`` objects in ``brand`` with natural keys that repeat in every brand."""
        raise NotImplementedError

    def detail_url(self, obj):
        return f"{self.url}{obj.pk}/"

    def listed(self, response):
        assert response.status_code == 200, response.content
        return response.json()["results"]

    def count_in(self, brand):
        with brand.scope():
            return self.model.objects.count()


class ListCases(EndpointCase):
    def test_list_answers_each_object_with_its_id_and_the_contract_fields(self, brand):
        made = self.make(brand, 3)
        rows = self.listed(brand.api().get(self.url, {"page_size": 500}))
        by_id = {row["id"]: row for row in rows}
        assert {obj.pk for obj in made} <= set(by_id)
        for row in rows:
            assert set(self.contract_fields) | {"id"} <= set(row), sorted(row)

    def test_list_leaves_out_another_brands_objects(self, brand, other_brand):
        mine = self.make(brand, 2)
        theirs = self.make(other_brand, 2)
        ids = {row["id"] for row in self.listed(brand.api().get(self.url, {"page_size": 500}))}
        assert {obj.pk for obj in mine} <= ids
        assert not ids & {obj.pk for obj in theirs}

    def test_list_runs_the_same_few_queries_for_three_rows_and_for_thirteen(self, brand):
        client = brand.api()
        self.make(brand, 3)
        client.get(self.url)  # the first request marks the key used; later ones within a minute do not
        with CaptureQueriesContext(connection) as few:
            assert client.get(self.url).status_code == 200
        self.make_more(brand, 10)
        with CaptureQueriesContext(connection) as many:
            rows = self.listed(client.get(self.url))
        assert len(rows) >= 13
        assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
        assert len(many) == self.list_queries, [q["sql"] for q in many.captured_queries]

    def make_more(self, brand, count):
        """More objects besides those of ``make`` (their natural keys must not clash)."""
        raise NotImplementedError

    def test_a_caller_without_credentials_is_refused(self, brand):
        self.make(brand, 1)
        from rest_framework.test import APIClient

        assert_error(APIClient().get(self.url), 401)

    def test_a_wrong_api_key_is_refused(self, brand):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Api-Key 00000000.not-a-key")
        assert_error(client.get(self.url), 401)


class RetrieveCases(EndpointCase):
    def test_retrieve_answers_the_object_with_its_contract_fields(self, brand):
        obj = self.make(brand, 1)[0]
        response = brand.api().get(self.detail_url(obj))
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["id"] == obj.pk
        assert set(self.contract_fields) <= set(body)

    def test_retrieve_of_another_brands_object_is_a_404(self, brand, other_brand):
        theirs = self.make(other_brand, 1)[0]
        self.make(brand, 1)
        assert_error(brand.api().get(self.detail_url(theirs)), 404)


class CreateCases(EndpointCase):
    def create_payload(self, brand):
        raise NotImplementedError

    def foreign_payloads(self, brand, other):
        """[(field, payload)]: payloads that name another brand's store or guide in ``field``."""
        return []

    def test_create_answers_201_with_the_stored_object(self, brand, other_brand):
        before_other = self.count_in(other_brand)
        payload = self.create_payload(brand)
        response = post_json(brand.api(), self.url, payload)
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(self.contract_fields) | {"id"} <= set(body)
        with brand.scope():
            assert self.model.objects.filter(pk=body["id"]).exists()
        assert self.count_in(other_brand) == before_other
        fetched = brand.api().get(f"{self.url}{body['id']}/")
        if fetched.status_code != 405:
            assert fetched.status_code == 200
            assert fetched.json()["id"] == body["id"]

    def test_create_with_another_brands_store_or_guide_is_refused_on_that_field(self, brand, other_brand):
        for field, payload in self.foreign_payloads(brand, other_brand):
            before = self.count_in(brand), self.count_in(other_brand)
            assert_error(post_json(brand.api(), self.url, payload), 400, field=field)
            assert (self.count_in(brand), self.count_in(other_brand)) == before

    def test_an_invalid_create_answers_400_with_field_messages(self, brand):
        response = post_json(brand.api(), self.url, {})
        error = assert_error(response, 400)
        assert error["fields"]


class UpdateCases(EndpointCase):
    def update_payload(self, brand, obj):
        """(payload, expected): PATCH ``payload`` and find ``expected`` (a dict) in the answer."""
        raise NotImplementedError

    def test_patch_changes_the_object(self, brand):
        obj = self.make(brand, 1)[0]
        payload, expected = self.update_payload(brand, obj)
        response = patch_json(brand.api(), self.detail_url(obj), payload)
        assert response.status_code == 200, response.content
        body = response.json()
        assert {key: body[key] for key in expected} == expected
        again = brand.api().get(self.detail_url(obj))
        if again.status_code != 405:
            assert {key: again.json()[key] for key in expected} == expected

    def test_patch_of_another_brands_object_is_a_404_and_changes_nothing(self, brand, other_brand):
        theirs = self.make(other_brand, 1)[0]
        mine = self.make(brand, 1)[0]
        payload, _expected = self.update_payload(brand, mine)
        before = other_brand.api().get(self.detail_url(theirs)).json()
        assert_error(patch_json(brand.api(), self.detail_url(theirs), payload), 404)
        assert other_brand.api().get(self.detail_url(theirs)).json() == before

    def test_patch_naming_another_brands_store_or_guide_is_refused_on_that_field(self, brand, other_brand):
        obj = self.make(brand, 1)[0]
        for field, payload in self.foreign_payloads(brand, other_brand):
            payload = {field: payload[field]}
            before = brand.api().get(self.detail_url(obj)).json()
            assert_error(patch_json(brand.api(), self.detail_url(obj), payload), 400, field=field)
            assert brand.api().get(self.detail_url(obj)).json() == before


class ModelEndpointCases(ListCases, RetrieveCases, CreateCases, UpdateCases):
    """List, retrieve, create, update and isolation for a plain model endpoint."""


class BulkCases(EndpointCase):
    """POST <url>bulk/: a JSON array of up to 1,000 objects answered per item in input order."""

    def bulk_item(self, brand, key):
        """A valid item whose natural key is ``key``."""
        raise NotImplementedError

    def bulk_bad_item(self, brand, key):
        """(item, field): an item with natural key ``key`` that fails validation on ``field``."""
        raise NotImplementedError

    def changed_item(self, brand, key):
        """The item of ``key`` with one field changed."""
        raise NotImplementedError

    def bulk_foreign_items(self, brand, other, key):
        """[(field, item)]: items that name another brand's store or guide."""
        return []

    def stored(self, brand, key):
        """The object stored under natural key ``key`` in ``brand``, or None."""
        raise NotImplementedError

    @property
    def bulk_url(self):
        return f"{self.url}bulk/"

    def bulk(self, brand, items, **headers):
        return post_json(brand.api(), self.bulk_url, items, **headers)

    def test_bulk_creates_then_reports_unchanged_then_updated_in_input_order(self, brand):
        before = self.count_in(brand)
        items = [self.bulk_item(brand, f"B{i}") for i in range(3)]
        first = self.bulk(brand, items)
        assert first.status_code == 200, first.content
        body = first.json()
        assert [r["index"] for r in body["results"]] == [0, 1, 2]
        assert [r["status"] for r in body["results"]] == ["created"] * 3
        assert body["summary"] == {"created": 3, "updated": 0, "unchanged": 0, "error": 0}
        for i, result in enumerate(body["results"]):
            assert result["id"] == self.stored(brand, f"B{i}").pk
        again = self.bulk(brand, [items[2], items[0], items[1]]).json()
        assert [r["status"] for r in again["results"]] == ["unchanged"] * 3
        assert [r["id"] for r in again["results"]] == [body["results"][i]["id"] for i in (2, 0, 1)]
        changed = self.bulk(brand, [items[0], self.changed_item(brand, "B1")]).json()
        assert [r["status"] for r in changed["results"]] == ["unchanged", self.changed_status]
        assert self.count_in(brand) == before + 3

    changed_status = "updated"

    def test_a_bulk_request_runs_as_many_queries_for_fifty_items_as_for_five(self, brand):
        brand.api().get(self.url)  # the first request marks the key used; later ones within a minute do not
        small = [self.bulk_item(brand, f"S{i}") for i in range(5)]
        large = [self.bulk_item(brand, f"L{i}") for i in range(50)]
        counts = {}
        for label in ("new", "unchanged"):
            for size, items in (("small", small), ("large", large)):
                with CaptureQueriesContext(connection) as queries:
                    response = self.bulk(brand, items)
                assert response.status_code == 200, response.content
                assert response.json()["summary"]["error"] == 0
                counts[label, size] = len(queries)
        assert counts["new", "small"] == counts["new", "large"], counts
        assert counts["unchanged", "small"] == counts["unchanged", "large"], counts

    def test_a_bad_item_is_reported_by_field_and_the_good_ones_are_kept(self, brand):
        bad, field = self.bulk_bad_item(brand, "B1")
        response = self.bulk(brand, [self.bulk_item(brand, "B0"), bad, self.bulk_item(brand, "B2"), "not an object"])
        assert response.status_code == 200, response.content
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["created", "error", "created", "error"]
        assert field in results[1]["errors"]
        assert results[3]["errors"]
        assert self.stored(brand, "B0") is not None and self.stored(brand, "B2") is not None
        assert self.stored(brand, "B1") is None

    def test_a_repeated_natural_key_in_one_batch_is_an_error_for_the_repeat(self, brand):
        item = self.bulk_item(brand, "B0")
        results = self.bulk(brand, [item, item]).json()["results"]
        assert [r["status"] for r in results] == ["created", "error"]

    def test_bulk_items_naming_another_brands_store_or_guide_fail_alone(self, brand, other_brand):
        foreign = self.bulk_foreign_items(brand, other_brand, "F")
        if not foreign:
            return
        items = [self.bulk_item(brand, "B0")] + [item for _field, item in foreign]
        results = self.bulk(brand, items).json()["results"]
        assert results[0]["status"] == "created"
        for (field, _item), result in zip(foreign, results[1:]):
            assert result["status"] == "error"
            assert field in result["errors"], result

    def test_the_same_natural_keys_in_two_brands_never_touch_each_other(self, brand, other_brand):
        theirs = self.bulk(other_brand, [self.bulk_item(other_brand, "B0")]).json()["results"][0]
        mine = self.bulk(brand, [self.bulk_item(brand, "B0")]).json()["results"][0]
        assert mine["status"] == "created" and theirs["status"] == "created"
        assert mine["id"] != theirs["id"]
        changed = self.bulk(brand, [self.changed_item(brand, "B0")]).json()["results"][0]
        assert changed["id"] == mine["id"]
        assert self.bulk(other_brand, [self.bulk_item(other_brand, "B0")]).json()["results"][0] == theirs | {
            "status": "unchanged"
        }

    def test_malformed_json_is_a_400_that_says_so(self, brand):
        before = self.count_in(brand)
        response = brand.api().post(
            self.bulk_url, data='[{"external_id": ', content_type="application/json", HTTP_ACCEPT_LANGUAGE="en"
        )
        error = assert_error(response, 400)
        assert "JSON" in error["message"]
        assert self.count_in(brand) == before

    def test_a_body_that_is_not_an_array_is_a_400(self, brand):
        error = assert_error(self.bulk(brand, self.bulk_item(brand, "B0"), HTTP_ACCEPT_LANGUAGE="en"), 400)
        assert "array" in error["message"]
        assert_error(self.bulk(brand, []), 400)

    def test_more_than_1000_items_is_a_400_that_says_so_and_stores_nothing(self, brand):
        before = self.count_in(brand)
        items = [self.bulk_item(brand, f"B{i}") for i in range(1001)]
        error = assert_error(self.bulk(brand, items, HTTP_ACCEPT_LANGUAGE="en"), 400)
        assert "1000" in error["message"] and "1001" in error["message"]
        assert self.count_in(brand) == before

    def test_an_idempotency_key_replays_the_first_answer_and_does_nothing_again(self, brand):
        before = self.count_in(brand)
        items = [self.bulk_item(brand, "B0"), self.bulk_item(brand, "B1")]
        first = self.bulk(brand, items, HTTP_IDEMPOTENCY_KEY="batch-1")
        assert first.status_code == 200
        # Something else changes B0 in between; the replay must not write B0 back.
        self.bulk(brand, [self.changed_item(brand, "B0")])
        changed = self.snapshot(brand, "B0")
        replay = self.bulk(brand, items, HTTP_IDEMPOTENCY_KEY="batch-1")
        assert replay.status_code == first.status_code
        assert replay.content == first.content
        assert replay["Idempotent-Replayed"] == "true"
        assert self.snapshot(brand, "B0") == changed
        assert self.count_in(brand) == before + 2

    def test_the_same_idempotency_key_with_another_body_is_a_422(self, brand):
        self.bulk(brand, [self.bulk_item(brand, "B0")], HTTP_IDEMPOTENCY_KEY="batch-1")
        response = self.bulk(brand, [self.bulk_item(brand, "B9")], HTTP_IDEMPOTENCY_KEY="batch-1")
        error = assert_error(response, 422)
        assert error["code"] == "idempotency_conflict"
        assert self.stored(brand, "B9") is None

    def test_an_idempotency_key_belongs_to_one_brand(self, brand, other_brand):
        self.bulk(brand, [self.bulk_item(brand, "B0")], HTTP_IDEMPOTENCY_KEY="batch-1")
        response = self.bulk(other_brand, [self.bulk_item(other_brand, "B7")], HTTP_IDEMPOTENCY_KEY="batch-1")
        assert response.status_code == 200, response.content
        assert response.json()["results"][0]["status"] == "created"
        assert self.stored(other_brand, "B7") is not None

    def snapshot(self, brand, key):
        obj = self.stored(brand, key)
        return brand.api().get(self.detail_url(obj)).json()


class VisibilityCases(EndpointCase):
    """Guides see their own members' rows, store managers their stores', operators everything."""

    def make_for(self, brand, guide, key):
        """One object belonging to a member owned by ``guide`` (and homed at the guide's store)."""
        raise NotImplementedError

    supports_retrieve = True

    def visible_ids(self, client):
        return {row["id"] for row in self.listed(client.get(self.url, {"page_size": 500}))}

    def test_a_guide_sees_only_their_own_members(self, brand):
        own = self.make_for(brand, brand.guide, "G1")
        others = self.make_for(brand, brand.guide2, "G2")
        client = brand.session(brand.guide)
        assert self.visible_ids(client) == {own.pk}
        if self.supports_retrieve:
            assert client.get(self.detail_url(own)).status_code == 200
            assert_error(client.get(self.detail_url(others)), 404)

    def test_a_store_manager_sees_the_members_of_their_stores(self, brand):
        own = self.make_for(brand, brand.guide, "G1")
        self.make_for(brand, brand.guide2, "G2")
        assert self.visible_ids(brand.session(brand.manager)) == {own.pk}

    def test_operators_owners_and_api_keys_see_every_member(self, brand):
        both = {self.make_for(brand, brand.guide, "G1").pk, self.make_for(brand, brand.guide2, "G2").pk}
        assert self.visible_ids(brand.session(brand.operator)) == both
        assert self.visible_ids(brand.session(brand.owner)) == both
        assert self.visible_ids(brand.api()) == both
