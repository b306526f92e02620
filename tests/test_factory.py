"""The application factory and what it registers."""

from __future__ import annotations


def test_swagger_ui_is_served(client):
    response = client.get("/apidocs/")
    assert response.status_code == 200 and b"swagger" in response.data.lower()


def test_openapi_spec_comes_from_the_schemas(client):
    spec = client.get("/apispec.json").get_json()
    assert spec["openapi"].startswith("3.")
    run_post = spec["paths"]["/api/v1.0/pipelines/{pipeline_id}/runs"]["post"]
    assert "201" in run_post["responses"]
    schemas = spec["components"]["schemas"]
    assert {"inputs", "parameters", "callback_url"} <= set(schemas["RunCreate"]["properties"])
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_readiness_reports_database_and_broker(client):
    body = client.get("/readiness").get_json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"  # the tests' in-memory broker


def test_unknown_route_is_json_404(client):
    response = client.get("/api/v1.0/nothing")
    assert response.status_code == 404 and "message" in response.get_json()


def test_wrong_method_is_json_405(client, client_headers):
    response = client.patch("/api/v1.0/pipelines", headers=client_headers)
    assert response.status_code == 405 and "message" in response.get_json()
