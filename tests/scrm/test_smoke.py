def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_the_api_refuses_a_caller_without_credentials(client, db):
    response = client.get("/api/v1/members/")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["status"] == response.status_code
