"""The mistakes a newcomer makes are answered when they are made, with a message that says
what to do, and nothing is stored for them."""

from __future__ import annotations

import pytest

API = "/api/v1.0/pipelines"
W = "/api/v1.0/worker/runs"


def runs_of(client, headers, pipeline):
    return client.get(f"{API}/{pipeline['id']}/runs", headers=headers).get_json()["items"]


def upload(client, headers, pipeline, name, data=b"// a model\n"):
    response = client.post(f"{API}/{pipeline['id']}/files?name={name}", data=data, headers=headers)
    assert response.status_code in (200, 201), response.get_json()
    return response


def test_run_of_a_pipeline_without_its_model_file_is_422(client, client_headers, pipeline):
    response = client.post(f"{API}/{pipeline['id']}/runs", json={}, headers=client_headers)
    assert response.status_code == 422
    body = response.get_json()
    assert "no file 'model.glm'" in body["message"] and "it has no files yet" in body["message"]
    assert f"{pipeline['id']}/files?name=model.glm" in body["message"]  # says how to upload it
    assert body["errors"]["model"] == ["No file 'model.glm'; it has no files yet"]
    assert runs_of(client, client_headers, pipeline) == []


def test_the_422_lists_the_files_the_pipeline_has(client, client_headers):
    created = client.post(
        API, json={"name": "hvac", "model": "models/house.glm"}, headers=client_headers
    ).get_json()
    upload(client, client_headers, created, "house.glm")  # uploaded without its folder
    upload(client, client_headers, created, "WA-Yakima.tmy2")
    response = client.post(f"{API}/{created['id']}/runs", json={}, headers=client_headers)
    assert response.status_code == 422
    message = response.get_json()["message"]
    assert "no file 'models/house.glm'" in message
    assert "its files are 'WA-Yakima.tmy2', 'house.glm'" in message
    assert "'house.glm' has the model's name in another folder" in message
    assert runs_of(client, client_headers, created) == []


def test_the_run_is_accepted_once_the_model_is_uploaded(client, client_headers, pipeline):
    upload(client, client_headers, pipeline, "model.glm")
    response = client.post(f"{API}/{pipeline['id']}/runs", json={}, headers=client_headers)
    assert response.status_code == 201, response.get_json()


def test_multipart_upload_is_refused_saying_to_send_the_raw_body(client, client_headers, pipeline):
    response = client.post(
        f"{API}/{pipeline['id']}/files?name=model.glm",
        data={"file": (b"clock {}", "model.glm")},  # what curl -F file=@model.glm sends
        content_type="multipart/form-data",
        headers=client_headers,
    )
    assert response.status_code == 415
    body = response.get_json()
    assert "--data-binary" in body["message"] and "curl -F" in body["message"]
    assert "Content-Type" in body["errors"]
    files = client.get(f"{API}/{pipeline['id']}/files", headers=client_headers).get_json()
    assert files["items"] == []


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_json_sent_without_its_content_type_is_told_so(client, client_headers, content_type):
    # What curl -d '{...}' sends without -H 'Content-Type: application/json'.
    response = client.post(
        API,
        data=b'{"name": "x", "model": "m.glm"}',
        headers={**client_headers, **({"Content-Type": content_type} if content_type else {})},
    )
    assert response.status_code == 415
    body = response.get_json()
    assert "Content-Type: application/json" in body["message"]
    assert "Missing data" not in str(body)
    listed = client.get(API, headers=client_headers).get_json()["items"]
    assert listed == []


def test_run_body_without_content_type_is_told_so(client, client_headers, pipeline, model_file):
    response = client.post(
        f"{API}/{pipeline['id']}/runs",
        data=b'{"parameters": {"A": "2"}}',
        content_type="application/x-www-form-urlencoded",
        headers=client_headers,
    )
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.get_json()["message"]
    assert runs_of(client, client_headers, pipeline) == []
    # No body at all is still a run with the pipeline's defaults.
    empty = client.post(f"{API}/{pipeline['id']}/runs", headers=client_headers)
    assert empty.status_code == 201 and empty.get_json()["parameters"] == {"A": "1"}


def claim(client, worker_headers, run):
    response = client.post(
        f"{W}/{run['id']}/claim",
        json={"worker_id": "w", "claim_token": "t"},
        headers=worker_headers,
    )
    assert response.status_code == 200
    return response.get_json()["attempt"]


def test_artifact_404_lists_the_artifacts_the_run_has(
    client, client_headers, worker_headers, pipeline, run
):
    url = f"{API}/{pipeline['id']}/runs/{run['id']}/artifacts"
    missing = client.get(f"{url}/out.csv", headers=client_headers)
    assert missing.status_code == 404 and "none yet" in missing.get_json()["message"]
    attempt = claim(client, worker_headers, run)
    for name in ("models/out.csv", "models/out_hourly.csv"):
        put = client.put(
            f"{W}/{run['id']}/artifacts/{name}?attempt={attempt}", data=b"1", headers=worker_headers
        )
        assert put.status_code == 201
    response = client.get(f"{url}/out.csv", headers=client_headers)
    assert response.status_code == 404
    body = response.get_json()
    assert "no artifact 'out.csv'" in body["message"]
    assert "its artifacts: 'models/out.csv', 'models/out_hourly.csv'" in body["message"]
    assert "'models/out.csv'" in body["errors"]["name"][0]


def test_worker_reports_the_parameters_the_model_never_reads(
    client, client_headers, worker_headers, pipeline, run
):
    assert run["unused_parameters"] == []
    report = f"{W}/{run['id']}/unused-parameters"
    attempt = claim(client, worker_headers, run)
    # A client key cannot write it; a stale attempt cannot either.
    by_client = client.post(
        report, json={"attempt": attempt, "names": ["A"]}, headers=client_headers
    )
    assert by_client.status_code == 403
    stale = client.post(
        report, json={"attempt": attempt + 1, "names": ["A"]}, headers=worker_headers
    )
    assert stale.status_code == 409
    bad = client.post(
        report, json={"attempt": attempt, "names": ["not a name"]}, headers=worker_headers
    )
    assert bad.status_code == 422 and "names" in str(bad.get_json()["errors"])
    # Names the run does not have are not recorded.
    ok = client.post(report, json={"attempt": attempt, "names": ["A", "B"]}, headers=worker_headers)
    assert ok.status_code == 204
    shown = client.get(f"{API}/{pipeline['id']}/runs/{run['id']}", headers=client_headers)
    assert shown.get_json()["unused_parameters"] == ["A"]
