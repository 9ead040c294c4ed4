from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from members import services
from members.models import ContactStatus, Event, Member
from tests.api_cases import BulkCases, ListCases, VisibilityCases, assert_error, post_json
from tests.members.test_api_members import make_members

EVENT_FIELDS = ("external_id", "member_external_id", "type", "occurred_at", "properties")
AT = datetime(2025, 11, 1, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def event_item(key, member_key="M0", type="message_read", occurred_at="2025-11-01T20:00:00+08:00", **fields):
    return {"external_id": key, "member_external_id": member_key, "type": type, "occurred_at": occurred_at,
            "properties": {"campaign": 7}, **fields}


def make_events(brand, keys, member_key="M0"):
    with brand.scope():
        items = [(i, {"external_id": key, "member_external_id": member_key, "type": "message_read",
                      "occurred_at": AT, "properties": {}}) for i, key in enumerate(keys)]
        outcomes, errors = services.ingest_events(brand.tenant, items)
        assert not errors, errors
        return list(Event.objects.filter(pk__in=[o["id"] for o in outcomes.values()]).order_by("pk"))


def member(brand, key):
    with brand.scope():
        return Member.objects.get(external_id=key)


def post_events(brand, items):
    return post_json(brand.api(), "/api/v1/events/bulk/", items)


@pytest.mark.django_db
class TestEventsEndpoint(ListCases, BulkCases, VisibilityCases):
    url = "/api/v1/events/"
    model = Event
    contract_fields = EVENT_FIELDS
    list_queries = 2  # the API key, then one page of events joined to their member
    changed_status = "unchanged"  # an event happened once; sending it again changes nothing
    supports_retrieve = False

    @pytest.fixture(autouse=True)
    def members_exist(self, brand, other_brand):
        make_members(brand, ["M0"], guide=brand.guide)
        make_members(other_brand, ["M0"], guide=other_brand.guide)

    def make(self, brand, count):
        return make_events(brand, [f"E{i}" for i in range(count)])

    def make_more(self, brand, count):
        make_members(brand, ["M9"], guide=brand.guide2, store=brand.store2)
        return make_events(brand, [f"F{i}" for i in range(count)], member_key="M9")

    def make_for(self, brand, guide, key):
        store = brand.store if guide == brand.guide else brand.store2
        make_members(brand, [f"member-{key}"], guide=guide, store=store)
        return make_events(brand, [key], member_key=f"member-{key}")[0]

    def bulk_item(self, brand, key):
        return event_item(key)

    def bulk_bad_item(self, brand, key):
        return event_item(key, type="teleported"), "type"

    def changed_item(self, brand, key):
        return event_item(key, properties={"campaign": 8})

    def stored(self, brand, key):
        with brand.scope():
            return Event.objects.filter(external_id=key).first()

    def snapshot(self, brand, key):
        with brand.scope():
            return Event.objects.filter(external_id=key).values().get()


@pytest.mark.django_db
class TestEventIngest:
    def test_an_event_lists_the_external_id_of_its_member(self, brand):
        make_members(brand, ["M0"])
        post_events(brand, [event_item("E1")])
        row = brand.api().get("/api/v1/events/").json()["results"][0]
        assert row["member_external_id"] == "M0"
        assert row["properties"] == {"campaign": 7}

    def test_an_event_of_an_unknown_member_is_an_error_for_that_item(self, brand):
        make_members(brand, ["M0"])
        results = post_events(brand, [event_item("E1", member_key="NOBODY"), event_item("E2")]).json()["results"]
        assert [r["status"] for r in results] == ["error", "created"]
        assert "member_external_id" in results[0]["errors"]

    def test_events_without_external_id_are_each_recorded(self, brand):
        make_members(brand, ["M0"])
        item = event_item(None)
        results = post_events(brand, [item, item]).json()["results"]
        assert [r["status"] for r in results] == ["created", "created"]

    def test_contact_deleted_marks_the_member_as_deleted_by_the_customer(self, brand):
        make_members(brand, ["M0"])
        post_events(brand, [event_item("E1", type="contact_deleted")])
        deleted = member(brand, "M0")
        assert deleted.contact_status == ContactStatus.DELETED_BY_CUSTOMER
        assert deleted.contact_status_changed_at == AT
        listed = brand.api().get("/api/v1/members/", {"contact_status": "deleted_by_customer"}).json()["results"]
        assert [row["external_id"] for row in listed] == ["M0"]

    def test_the_newest_contact_event_wins_whatever_the_order_they_arrive_in(self, brand):
        make_members(brand, ["M0"])
        post_events(brand, [
            event_item("E2", type="contact_added", occurred_at="2025-11-02T09:00:00+08:00"),
            event_item("E1", type="contact_deleted", occurred_at="2025-11-01T09:00:00+08:00"),
        ])
        assert member(brand, "M0").contact_status == ContactStatus.ACTIVE
        post_events(brand, [event_item("E0", type="contact_deleted", occurred_at="2025-10-01T09:00:00+08:00")])
        assert member(brand, "M0").contact_status == ContactStatus.ACTIVE

    def test_a_contact_event_in_one_brand_leaves_the_same_external_id_in_another_alone(self, brand, other_brand):
        make_members(brand, ["M0"])
        make_members(other_brand, ["M0"])
        post_events(other_brand, [event_item("E1", type="contact_deleted")])
        assert member(brand, "M0").contact_status == ContactStatus.ACTIVE
        assert member(other_brand, "M0").contact_status == ContactStatus.DELETED_BY_CUSTOMER
        result = post_events(brand, [event_item("E1")]).json()["results"][0]
        assert result["status"] == "created"

    def test_events_have_no_single_create(self, brand):
        make_members(brand, ["M0"])
        assert_error(post_json(brand.api(), "/api/v1/events/", event_item("E1")), 405)

    def test_the_list_filters_by_member_and_type(self, brand):
        make_members(brand, ["M0", "M1"])
        post_events(brand, [event_item("E1"), event_item("E2", member_key="M1", type="coupon_claimed")])
        m1 = member(brand, "M1")
        by_member = brand.api().get("/api/v1/events/", {"member_id": m1.pk}).json()["results"]
        by_type = brand.api().get("/api/v1/events/", {"type": "coupon_claimed"}).json()["results"]
        assert [row["external_id"] for row in by_member] == ["E2"]
        assert [row["external_id"] for row in by_type] == ["E2"]
