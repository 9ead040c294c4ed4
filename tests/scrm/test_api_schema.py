import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from scrm.urls import router

# Every operation of the integrator API, as the issue names them.
EXPECTED_OPERATIONS = {
    ("/api/v1/members/", "get"), ("/api/v1/members/", "post"), ("/api/v1/members/{id}/", "get"),
    ("/api/v1/members/{id}/", "patch"), ("/api/v1/members/bulk/", "post"),
    ("/api/v1/orders/", "get"), ("/api/v1/orders/", "post"), ("/api/v1/orders/{id}/", "get"),
    ("/api/v1/orders/{id}/", "patch"), ("/api/v1/orders/bulk/", "post"),
    ("/api/v1/events/", "get"), ("/api/v1/events/bulk/", "post"),
    ("/api/v1/stores/", "get"), ("/api/v1/stores/", "post"), ("/api/v1/stores/{id}/", "patch"),
    ("/api/v1/staff/", "get"), ("/api/v1/staff/", "post"), ("/api/v1/staff/{id}/", "patch"),
    ("/api/v1/api-keys/", "get"), ("/api/v1/api-keys/", "post"), ("/api/v1/api-keys/{id}/revoke/", "post"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_schema_generates_and_validates_without_warnings(db, tmp_path):
    # --fail-on-warn turns any warning or error of the generator into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_the_schema_lists_every_endpoint_of_the_issue(schema):
    listed = {(path, method) for path, method, _op in operations(schema)}
    assert EXPECTED_OPERATIONS <= listed


def test_every_registered_endpoint_is_in_the_schema(schema):
    paths = list(schema["paths"])
    for prefix, viewset, _basename in router.registry:
        # members/(?P<member_pk>\d+)/tags -> members/{member_pk}/tags
        path = "/api/v1/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", prefix) + "/"
        assert any(listed.startswith(path) for listed in paths), (viewset.__name__, path)


def test_api_key_authentication_is_described(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {
        "type": "apiKey", "in": "header", "name": "Authorization", "description": schemes["ApiKeyAuth"]["description"]
    }
    assert "Api-Key" in schemes["ApiKeyAuth"]["description"]


def test_every_integrator_operation_has_examples(schema):
    missing = []
    for path, method, operation in operations(schema):
        if (path, method) not in EXPECTED_OPERATIONS:
            continue
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and not body.get("examples"):
            missing.append(f"{method} {path} request")
        ok = next(code for code in operation["responses"] if code.startswith("2"))
        answer = operation["responses"][ok].get("content", {}).get("application/json")
        if answer is not None and not answer.get("examples"):
            missing.append(f"{method} {path} response {ok}")
    assert not missing, missing


def test_bulk_operations_document_the_error_shape_and_the_idempotency_key(schema):
    for path, method, operation in operations(schema):
        if not path.endswith("/bulk/"):
            continue
        assert "400" in operation["responses"], path
        assert "422" in operation["responses"], path
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path


def test_the_docs_page_loads_nothing_from_another_host(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""url\s*:\s*["']([^"']+)["']""", html)
    assert urls
    assert not [u for u in urls if re.match(r"^(?:[a-z]+:)?//", u, re.I)], urls
    assert not re.search(r"https?://(?!localhost|127\.0\.0\.1|testserver)", html), html


def test_the_docs_assets_are_served_from_this_installation(db):
    html = APIClient().get("/api/docs/").content.decode()
    assets = [u for u in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) if u.startswith("/static/")]
    assert any(a.endswith(".js") for a in assets), assets
    client = APIClient()
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
