"""Bad input gets a 4xx that names the field and the reason, never a 500, and nothing
already stored is lost or half-written."""

from __future__ import annotations

import io

import pytest

API = "/api/v1.0/pipelines"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("{not json", "application/json", 400, "json"),
        ("[1, 2]", "application/json", 422, "_schema"),
        ('"text"', "application/json", 422, "_schema"),
        ('{"name": 5, "model": "m.glm"}', "application/json", 422, "name"),
        ('{"name": "x", "model": "m.glm", "colour": "red"}', "application/json", 422, "colour"),
        ('{"name": "x"}', "application/json", 422, "model"),
        ('{"name": "x", "model": "m.txt"}', "application/json", 422, "model"),
        ('{"name": "x", "model": "../m.glm"}', "application/json", 422, "model"),
        ('{"name": "x", "model": "m.glm", "timeout_seconds": 0}', "application/json", 422,
         "timeout_seconds"),
        ('{"name": "x", "model": "m.glm", "timeout_seconds": "soon"}', "application/json", 422,
         "timeout_seconds"),
        ('{"name": "x", "model": "m.glm", "parameters": {"bad name": 1}}', "application/json", 422,
         "parameters"),
        ('{"name": "x", "model": "m.glm", "parameters": {"A": [1]}}', "application/json", 422,
         "parameters"),
        ('{"name": "x", "model": "m.glm", "parameters": {"A": "a\\nb"}}', "application/json", 422,
         "parameters"),
    ],
)  # fmt: skip
def test_create_pipeline_rejects(client, client_headers, body, content_type, status, field):
    response = client.post(API, data=body, content_type=content_type, headers=client_headers)
    assert response.status_code == status
    payload = response.get_json()
    assert field in str(payload["errors"]) and payload["message"]


@pytest.mark.parametrize(
    ("run_body", "field"),
    [
        ({"inputs": [{"name": "a.csv", "url": "file:///etc/passwd"}]}, "url"),
        ({"inputs": [{"name": "a.csv", "url": "ftp://host/a.csv"}]}, "url"),
        ({"inputs": [{"name": "a.csv", "url": "http://"}]}, "url"),
        ({"inputs": [{"name": "a.csv", "url": "s3://bucket-only"}]}, "url"),
        ({"inputs": [{"name": "../../etc/x", "url": "https://h/x"}]}, "name"),
        ({"inputs": [{"name": "/abs", "url": "https://h/x"}]}, "name"),
        ({"inputs": [{"name": "a", "url": "https://h/x"}, {"name": "a", "url": "https://h/y"}]},
         "inputs"),
        ({"inputs": "nope"}, "inputs"),
        ({"parameters": {"X": {"nested": 1}}}, "parameters"),
        ({"callback_url": "javascript:alert(1)"}, "callback_url"),
        ({"timeout_seconds": -5}, "timeout_seconds"),
        ({"unexpected": True}, "unexpected"),
    ],
)  # fmt: skip
def test_create_run_rejects(client, client_headers, pipeline, run_body, field):
    url = f"{API}/{pipeline['id']}/runs"
    response = client.post(url, json=run_body, headers=client_headers)
    assert response.status_code == 422
    assert field in str(response.get_json()["errors"])
    listing = client.get(url, headers=client_headers).get_json()
    assert listing["items"] == []  # nothing half-created


def test_run_on_missing_pipeline_is_404(client, client_headers):
    response = client.post(f"{API}/missing/runs", json={}, headers=client_headers)
    assert response.status_code == 404
    assert "pipeline_id" in response.get_json()["errors"]


def test_run_of_another_pipeline_is_404(client, client_headers, pipeline, run):
    other = client.post(API, json={"name": "o", "model": "o.glm"}, headers=client_headers)
    other_id = other.get_json()["id"]
    for suffix in ("", "/logs", "/artifacts/x.csv"):
        response = client.get(f"{API}/{other_id}/runs/{run['id']}{suffix}", headers=client_headers)
        assert response.status_code == 404
    cancel = client.post(f"{API}/{other_id}/runs/{run['id']}/cancel", headers=client_headers)
    assert cancel.status_code == 404


def test_oversize_upload_is_413_and_keeps_the_old_file(app, client, client_headers, pipeline):
    url = f"{API}/{pipeline['id']}/files?name=model.glm"
    assert client.post(url, data=b"original", headers=client_headers).status_code == 201
    limit = app.config["SETTINGS"].MAX_FILE_UPLOAD_BYTES
    app.config["SETTINGS"] = type(app.config["SETTINGS"])(
        **{**app.config["SETTINGS"].__dict__, "MAX_FILE_UPLOAD_BYTES": 10}
    )
    response = client.post(url, data=b"x" * 11, headers=client_headers)
    assert response.status_code == 413 and "limit" in response.get_json()["message"]
    app.config["SETTINGS"] = type(app.config["SETTINGS"])(
        **{**app.config["SETTINGS"].__dict__, "MAX_FILE_UPLOAD_BYTES": limit}
    )
    files = client.get(f"{API}/{pipeline['id']}/files", headers=client_headers).get_json()
    assert [(f["name"], f["size"]) for f in files["items"]] == [("model.glm", 8)]


def test_chunked_oversize_upload_is_413(app, client, client_headers, pipeline):
    app.config["SETTINGS"] = type(app.config["SETTINGS"])(
        **{**app.config["SETTINGS"].__dict__, "MAX_FILE_UPLOAD_BYTES": 10}
    )

    url = f"{API}/{pipeline['id']}/files?name=big.glm"
    response = client.post(
        url,
        input_stream=io.BytesIO(b"x" * 25),  # no Content-Length: cut off while streaming
        headers={**client_headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets for chunked
    )
    assert response.status_code == 413
    files = client.get(f"{API}/{pipeline['id']}/files", headers=client_headers).get_json()
    assert files["items"] == []


@pytest.mark.parametrize("name", ["../x.glm", "/etc/passwd", "a//b", "a/./b", "", "x\\y", 'q"uote'])
def test_bad_file_names_are_422(client, client_headers, pipeline, name):
    response = client.post(
        f"{API}/{pipeline['id']}/files",
        query_string={"name": name},
        data=b"x",
        headers=client_headers,
    )
    assert response.status_code == 422 and "name" in response.get_json()["errors"]["query"]


def test_bad_state_filter_is_422(client, client_headers, pipeline):
    response = client.get(f"{API}/{pipeline['id']}/runs?state=DONE", headers=client_headers)
    assert response.status_code == 422 and "state" in str(response.get_json()["errors"])
