"""Pipelines and their files through the HTTP API."""

from __future__ import annotations

import hashlib
from pathlib import Path

API = "/api/v1.0/pipelines"


def test_create_returns_201_with_location(client, client_headers):
    response = client.post(
        API,
        json={"name": "feeder", "model": "m.glm", "parameters": {"SIZE": 3}, "timeout_seconds": 60},
        headers=client_headers,
    )
    body = response.get_json()
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"{API}/{body['id']}")
    assert body["parameters"] == {"SIZE": "3"}
    assert body["timeout_seconds"] == 60 and body["max_retries"] == 2


def test_default_timeout_comes_from_settings(client, client_headers, app):
    response = client.post(API, json={"name": "x", "model": "m.glm"}, headers=client_headers)
    assert response.get_json()["timeout_seconds"] == app.config["SETTINGS"].DEFAULT_TIMEOUT_SECONDS


def test_get_put_delete(client, client_headers, pipeline):
    url = f"{API}/{pipeline['id']}"
    assert client.get(url, headers=client_headers).get_json()["name"] == "ieee13"
    update = {"name": "renamed", "model": "other.glm", "description": "d"}
    response = client.put(url, json=update, headers=client_headers)
    assert response.status_code == 200 and response.get_json()["name"] == "renamed"
    assert client.delete(url, headers=client_headers).status_code == 204
    assert client.get(url, headers=client_headers).status_code == 404


def test_delete_refused_while_a_run_is_unfinished(client, client_headers, pipeline, run):
    response = client.delete(f"{API}/{pipeline['id']}", headers=client_headers)
    assert response.status_code == 409
    assert client.get(f"{API}/{pipeline['id']}", headers=client_headers).status_code == 200


def test_list_is_paginated_newest_first(client, client_headers):
    ids = [
        client.post(
            API, json={"name": f"p{i}", "model": "m.glm"}, headers=client_headers
        ).get_json()["id"]
        for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = client.get(API + query, headers=client_headers).get_json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))


def test_bad_cursor_is_422(client, client_headers):
    response = client.get(API + "?cursor=garbage", headers=client_headers)
    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]


def test_upload_list_and_replace_file(client, client_headers, pipeline):
    url = f"{API}/{pipeline['id']}/files"
    first = client.post(url + "?name=model.glm", data=b"clock {}", headers=client_headers)
    assert first.status_code == 201
    assert first.get_json()["sha256"] == hashlib.sha256(b"clock {}").hexdigest()
    second = client.post(url + "?name=model.glm", data=b"v2", headers=client_headers)
    assert second.status_code == 200 and second.get_json()["size"] == 2
    client.post(url + "?name=weather/w.tmy2", data=b"w", headers=client_headers)
    names = [f["name"] for f in client.get(url, headers=client_headers).get_json()["items"]]
    assert sorted(names) == ["model.glm", "weather/w.tmy2"]
    page = client.get(url + "?limit=1", headers=client_headers).get_json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = client.get(f"{url}?limit=1&cursor={page['next_cursor']}", headers=client_headers)
    assert {page["items"][0]["name"], rest.get_json()["items"][0]["name"]} == set(names)


def test_files_of_missing_pipeline_are_404(client, client_headers):
    response = client.post(f"{API}/nope/files?name=a.glm", data=b"x", headers=client_headers)
    assert response.status_code == 404
    assert client.get(f"{API}/nope/files", headers=client_headers).status_code == 404


def test_delete_removes_finished_runs_and_their_artifacts(
    app, client, client_headers, worker_headers, pipeline, run
):
    from app.extensions import db
    from app.runs.models import Run, RunLogLine

    worker = f"/api/v1.0/worker/runs/{run['id']}"
    client.post(
        f"{worker}/claim", json={"worker_id": "w", "claim_token": "t"}, headers=worker_headers
    )
    client.post(
        f"{worker}/logs",
        json={"attempt": 1, "first_seq": 1, "lines": ["x"]},
        headers=worker_headers,
    )
    client.put(f"{worker}/artifacts/out.csv?attempt=1", data=b"1", headers=worker_headers)
    client.post(
        f"{worker}/state", json={"attempt": 1, "state": "COMPLETED"}, headers=worker_headers
    )
    stored = app.config["SETTINGS"].ARTIFACTS_DIR
    assert list(Path(stored, "runs").rglob("out.csv"))
    assert client.delete(f"{API}/{pipeline['id']}", headers=client_headers).status_code == 204
    assert db.session.query(Run).count() == 0 and db.session.query(RunLogLine).count() == 0
    assert not list(Path(stored, "runs").rglob("out.csv"))
