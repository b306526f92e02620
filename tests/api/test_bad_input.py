"""Bad input gets a 4xx that names the field and the reason, never a 500, and nothing
already stored is lost or half-written."""

from __future__ import annotations

import base64
import io
import json

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


# --- each a 500 before: found by fuzzing the OpenAPI spec and by hand -------------------


def test_duplicate_input_names_with_a_bad_url_is_422(client, client_headers, pipeline):
    # marshmallow keys item errors by index (int) beside "_schema" (str): sorting them broke
    inputs = [{"name": "a", "url": "ftp://h/x"}, {"name": "a", "url": "https://h/y"}]
    url = f"{API}/{pipeline['id']}/runs"
    response = client.post(url, json={"inputs": inputs}, headers=client_headers)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]["inputs"]
    assert "url" in errors["0"] and "unique" in str(errors["_schema"])
    assert client.get(url, headers=client_headers).get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"name": "a\\u0000", "model": "m.glm"}', ["name"]),
        ('{"name": "\\ud800", "model": "m.glm"}', ["name"]),
        ('{"name": "x", "model": "m.glm", "description": "\\udfff tail"}', ["description"]),
        ('{"name": "x", "model": "m.glm", "parameters": {"A\\u0000": 1}}', ["parameters"]),
        ('{"name": "x", "model": "m.glm", "parameters": {"A": "\\ud800"}}', ["parameters", "A"]),
    ],
)
def test_text_that_cannot_be_stored_is_422(client, client_headers, body, path):
    response = client.post(API, data=body, content_type="application/json", headers=client_headers)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]
    for key in path:
        errors = errors[key]
    assert "NUL" in str(errors) or "surrogate" in str(errors)
    assert client.get(API, headers=client_headers).get_json()["items"] == []


def test_bad_text_in_a_key_is_named_escaped(client, client_headers):
    body = '{"name": "x", "model": "m.glm", "parameters": {"A\\u0000": 1}}'
    response = client.post(API, data=body, content_type="application/json", headers=client_headers)
    assert response.status_code == 422
    assert "'A\\x00'" in response.get_json()["errors"]["json"]["parameters"]
    assert "\x00" not in response.get_data(as_text=True)


def test_nul_in_a_path_id_is_422(client, client_headers, worker_headers, run):
    answers = [
        client.get(f"{API}/a%00", headers=client_headers),
        client.get(f"{API}/{run['pipeline_id']}/runs/r%00/logs", headers=client_headers),
        client.post("/api/v1.0/worker/runs/a%00/claim", json={"worker_id": "w"},
                    headers=worker_headers),
        client.post("/api/v1.0/worker/runs/a%00/heartbeat", json={"attempt": 1},
                    headers=worker_headers),
    ]  # fmt: skip
    for response in answers:
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["errors"]["path"]


def test_nul_in_a_query_or_header_is_422(client, client_headers, pipeline):
    response = client.get(f"{API}?cursor=%00", headers=client_headers)
    assert response.status_code == 422 and "cursor" in response.get_json()["errors"]["query"]
    response = client.post(
        f"{API}/{pipeline['id']}/runs",
        json={},
        headers={**client_headers, "Idempotency-Key": "k\x00"},
    )
    assert response.status_code == 422 and response.get_json()["errors"]["headers"]


def test_nul_in_a_worker_body_is_422(client, worker_headers, run):
    worker = f"/api/v1.0/worker/runs/{run['id']}"
    client.post(f"{worker}/claim", json={"worker_id": "w"}, headers=worker_headers)
    response = client.post(
        f"{worker}/logs",
        json={"attempt": 1, "first_seq": 1, "lines": ["ok", "bad \x00"]},
        headers=worker_headers,
    )
    assert response.status_code == 422
    assert "NUL" in str(response.get_json()["errors"]["json"]["lines"]["1"])


def _cursor(*values: object) -> str:
    raw = json.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("2024-01-01T00:00:00+00:00", 5),  # an int key: compared with a string column
        _cursor("2024-01-01T00:00:00+00:00", None),
        _cursor(5, "a"),
        _cursor("yesterday", "a"),
        _cursor("0001-01-01T00:00:00+14:00", "a"),  # overflows to UTC
        _cursor("2024-01-01T00:00:00+00:00", "a\x00"),
        _cursor("2024-01-01T00:00:00+00:00", "a", "b"),
    ],
)
def test_forged_cursor_is_422(client, client_headers, pipeline, run, cursor):
    for url in (API, f"{API}/{pipeline['id']}/files", f"{API}/{pipeline['id']}/runs"):
        response = client.get(url, query_string={"cursor": cursor}, headers=client_headers)
        assert response.status_code == 422, (url, response.get_json())
        assert response.get_json()["message"] == "Invalid cursor"


def test_naive_cursor_time_is_read_as_utc(client, client_headers, pipeline):
    cursor = _cursor("2999-01-01T00:00:00", "z")  # after every row
    response = client.get(API, query_string={"cursor": cursor}, headers=client_headers)
    assert response.status_code == 200
    assert [item["id"] for item in response.get_json()["items"]] == [pipeline["id"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_retries", 2.7), ("max_retries", "3"), ("max_retries", True),
     ("timeout_seconds", "600"), ("timeout_seconds", 60.5), ("retry_backoff_seconds", "1")],
)  # fmt: skip
def test_numbers_must_be_json_numbers_of_the_documented_type(client, client_headers, field, value):
    body = {"name": "x", "model": "m.glm", field: value}
    response = client.post(API, json=body, headers=client_headers)
    assert response.status_code == 422 and field in response.get_json()["errors"]["json"]


@pytest.mark.parametrize(
    ("route", "body"),
    [("heartbeat", {"attempt": 1.0}), ("heartbeat", {"attempt": "1"}),
     ("progress", {"attempt": 1, "percent": "50"}),
     ("logs", {"attempt": 1, "first_seq": 1.5, "lines": []}),
     ("state", {"attempt": 1, "state": "RUNNING"})],
)  # fmt: skip
def test_worker_bodies_are_strict(client, worker_headers, run, route, body):
    worker = f"/api/v1.0/worker/runs/{run['id']}"
    client.post(f"{worker}/claim", json={"worker_id": "w"}, headers=worker_headers)
    response = client.post(f"{worker}/{route}", json=body, headers=worker_headers)
    assert response.status_code == 422, response.get_json()


def test_log_position_past_any_sequence_number_is_422(client, client_headers, run):
    url = f"{API}/{run['pipeline_id']}/runs/{run['id']}/logs?after={10**30}"
    response = client.get(url, headers=client_headers)  # SQLite cannot bind it: was a 500
    assert response.status_code == 422 and "after" in response.get_json()["errors"]["query"]


def test_run_body_is_optional(client, client_headers, pipeline, model_file):
    response = client.post(f"{API}/{pipeline['id']}/runs", headers=client_headers)
    assert response.status_code == 201
    assert response.get_json()["parameters"] == pipeline["parameters"]


def test_a_body_that_is_not_json_is_415_not_ignored(client, client_headers, pipeline):
    url = f"{API}/{pipeline['id']}/runs"
    # curl -d without a Content-Type sends a form: it was read as no body at all.
    response = client.post(url, data='{"timeout_seconds": 5}', headers=client_headers,
                           content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == 415
    assert response.get_json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert client.get(url, headers=client_headers).get_json()["items"] == []


def test_method_not_allowed_says_which_are(client, client_headers):
    response = client.patch(API, headers=client_headers)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.get_json()["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("name", ["a.glm\n", "a\n/b.glm"])
def test_a_newline_in_a_file_name_is_422(client, client_headers, pipeline, name):
    response = client.post(
        f"{API}/{pipeline['id']}/files", query_string={"name": name}, data=b"x",
        headers=client_headers,
    )  # fmt: skip
    assert response.status_code == 422


def test_every_error_has_a_code(client, client_headers):
    answers = {
        400: client.post(API, data="{", content_type="application/json", headers=client_headers),
        401: client.get(API),
        404: client.get(f"{API}/missing", headers=client_headers),
        422: client.post(API, json={}, headers=client_headers),
    }
    for status, response in answers.items():
        assert response.status_code == status
        body = response.get_json()
        assert set(body) == {"code", "message", "errors"} and body["code"].isupper()
