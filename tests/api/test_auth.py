"""Every endpoint but health needs a key; the wrong permission is 403, not 401."""

from __future__ import annotations

import pytest

CLIENT_ENDPOINTS = [
    ("get", "/api/v1.0/pipelines"),
    ("post", "/api/v1.0/pipelines"),
    ("get", "/api/v1.0/pipelines/p1"),
    ("put", "/api/v1.0/pipelines/p1"),
    ("delete", "/api/v1.0/pipelines/p1"),
    ("get", "/api/v1.0/pipelines/p1/files"),
    ("post", "/api/v1.0/pipelines/p1/files?name=a.glm"),
    ("get", "/api/v1.0/pipelines/p1/runs"),
    ("post", "/api/v1.0/pipelines/p1/runs"),
    ("get", "/api/v1.0/pipelines/p1/runs/r1"),
    ("post", "/api/v1.0/pipelines/p1/runs/r1/cancel"),
    ("get", "/api/v1.0/pipelines/p1/runs/r1/logs"),
    ("get", "/api/v1.0/pipelines/p1/runs/r1/artifacts/a.csv"),
    ("get", "/api/v1.0/workflows"),
    ("post", "/api/v1.0/workflows"),
    ("get", "/api/v1.0/workflows/w1"),
    ("put", "/api/v1.0/workflows/w1"),
    ("delete", "/api/v1.0/workflows/w1"),
    ("get", "/api/v1.0/workflows/w1/runs"),
    ("post", "/api/v1.0/workflows/w1/runs"),
    ("get", "/api/v1.0/workflows/w1/runs/r1"),
    ("post", "/api/v1.0/workflows/w1/runs/r1/cancel"),
    ("post", "/api/v1.0/workflows/w1/runs/r1/retry"),
    ("get", "/api/v1.0/workflows/w1/runs/r1/logs"),
    ("get", "/api/v1.0/schedules"),
    ("post", "/api/v1.0/schedules"),
    ("get", "/api/v1.0/schedules/s1"),
    ("put", "/api/v1.0/schedules/s1"),
    ("delete", "/api/v1.0/schedules/s1"),
]
WORKER_ENDPOINTS = [
    ("post", "/api/v1.0/worker/runs/r1/claim"),
    ("post", "/api/v1.0/worker/runs/r1/heartbeat"),
    ("post", "/api/v1.0/worker/runs/r1/progress"),
    ("post", "/api/v1.0/worker/runs/r1/logs"),
    ("put", "/api/v1.0/worker/runs/r1/artifacts/a.csv"),
    ("post", "/api/v1.0/worker/runs/r1/state"),
    ("get", "/api/v1.0/worker/runs/r1/files/a.glm"),
]


@pytest.mark.parametrize(("method", "path"), CLIENT_ENDPOINTS + WORKER_ENDPOINTS)
def test_missing_key_is_401(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert "Missing API key" in response.get_json()["message"]


@pytest.mark.parametrize(("method", "path"), CLIENT_ENDPOINTS + WORKER_ENDPOINTS)
def test_unknown_key_is_401(client, method, path):
    response = getattr(client, method)(path, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), CLIENT_ENDPOINTS)
def test_worker_key_cannot_call_client_endpoints(client, worker_headers, method, path):
    response = getattr(client, method)(path, headers=worker_headers)
    assert response.status_code == 403
    assert "PIPELINES_CLIENT" in response.get_json()["message"]


@pytest.mark.parametrize(("method", "path"), WORKER_ENDPOINTS)
def test_client_key_cannot_call_worker_endpoints(client, client_headers, method, path):
    response = getattr(client, method)(path, headers=client_headers)
    assert response.status_code == 403


def test_every_api_route_needs_a_key(app, client):
    """Derived from the app itself, so a route added later is covered without a list."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1.0/"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "x").replace(f"<path:{argument}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code == 401, (method, rule.rule)
            checked += 1
    assert checked >= len(CLIENT_ENDPOINTS) + len(WORKER_ENDPOINTS)


def test_health_needs_no_key(client):
    assert client.get("/healthcheck").get_json() == {"status": "ok"}


def test_revoked_key_is_refused(app, client, client_headers):
    from app.auth.models import ApplicationKey
    from app.extensions import db

    for key in db.session.query(ApplicationKey):
        key.revoked_at = key.created_at
    db.session.commit()
    assert client.get("/api/v1.0/pipelines", headers=client_headers).status_code == 401


def test_keys_are_stored_hashed(app, client_headers):
    from app.auth.models import ApplicationKey
    from app.extensions import db

    token = client_headers["Authorization"].split()[1]
    stored = [k.key_hash for k in db.session.query(ApplicationKey)]
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_create_key_command_prints_token_once(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-application-key", "-n", "cli", "-p", "PIPELINES_CLIENT"])
    assert result.exit_code == 0
    assert result.output.startswith("API_TOKEN=") and len(result.output.strip()) > 40
    bad = runner.invoke(args=["create-application-key", "-n", "cli", "-p", "ADMIN"])
    assert bad.exit_code != 0
