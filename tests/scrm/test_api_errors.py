import json

import pytest
from django.test import RequestFactory

from scrm.exceptions import server_error
from tests.api_cases import assert_error, post_json


@pytest.mark.django_db
class TestOneErrorShape:
    def test_an_unknown_api_path_answers_404_in_the_error_shape(self, brand):
        error = assert_error(brand.api().get("/api/v1/no-such-thing/"), 404)
        assert error["code"] == "not_found"

    def test_an_unknown_object_answers_404_in_the_error_shape(self, brand):
        assert_error(brand.api().get("/api/v1/members/999999/"), 404)

    def test_a_method_that_is_not_offered_answers_405(self, brand):
        error = assert_error(brand.api().delete("/api/v1/members/1/"), 405)
        assert error["code"] == "method_not_allowed"

    def test_a_form_encoded_bulk_body_answers_415(self, brand):
        response = brand.api().post("/api/v1/members/bulk/", {"external_id": "M1"}, format="multipart")
        assert_error(response, 415)

    def test_malformed_json_on_a_single_create_answers_400(self, brand):
        response = brand.api().post("/api/v1/members/", data="{nope", content_type="application/json")
        assert assert_error(response, 400)["code"] == "parse_error"

    def test_field_errors_name_the_field_and_the_line_of_an_order(self, brand):
        payload = {"external_id": "O1", "member_external_id": "M1", "placed_at": "2025-11-01T10:00:00+08:00",
                   "total": "10.00", "lines": [{"sku": "A", "unit_price": "-5.00", "amount": "5.00"}, {"sku": "B"}]}
        error = assert_error(post_json(brand.api(), "/api/v1/orders/", payload), 400, field="lines")
        assert set(error["fields"]["lines"]) == {"0", "1"}
        assert set(error["fields"]["lines"]["0"]) == {"unit_price"}
        assert set(error["fields"]["lines"]["1"]) == {"unit_price", "amount"}

    def test_messages_follow_the_callers_language(self, brand):
        english = brand.api().get("/api/v1/members/999999/", HTTP_ACCEPT_LANGUAGE="en").json()
        chinese = brand.api().get("/api/v1/members/999999/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
        assert english["error"]["message"] == "Not found."
        assert chinese["error"]["message"] != english["error"]["message"]

    def test_a_server_error_on_an_api_path_answers_in_the_error_shape(self):
        response = server_error(RequestFactory().get("/api/v1/members/"))
        assert response.status_code == 500
        body = json.loads(response.content)
        assert body["error"]["status"] == 500 and body["error"]["code"] == "server_error"

    def test_an_unknown_page_outside_the_api_is_still_a_page(self, brand):
        response = brand.session(brand.operator).get("/no-such-page/")
        assert response.status_code == 404
        assert not response["Content-Type"].startswith("application/json")
