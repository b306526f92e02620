"""Job kinds and job runs through the HTTP API (in process, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.extensions import db
from app.schedules.firing import tick

KINDS = "/api/v1.0/job-kinds"
REPORT = f"{KINDS}/voltage_report"


def test_kinds_are_listed_with_their_parameter_schema(client, client_headers):
    body = client.get(KINDS, headers=client_headers).get_json()
    kinds = {item["name"]: item for item in body["items"]}
    assert {"csv_summary", "voltage_report"} <= set(kinds)
    report = kinds["voltage_report"]
    assert report["parameters"]["required"] == ["nominal_voltage"]
    assert report["parameters"]["properties"]["low_pu"]["default"] == 0.95
    assert report["queue"] == "jobs.voltage_report" and report["workers"] == 0
    assert client.get(REPORT, headers=client_headers).get_json() == report


def test_unknown_kind_is_404_naming_the_installed(client, client_headers):
    response = client.post(f"{KINDS}/nope/runs", json={}, headers=client_headers)
    assert response.status_code == 404
    assert "csv_summary" in response.get_json()["errors"]["kind"][0]
    assert client.get(f"{KINDS}/nope", headers=client_headers).status_code == 404
    assert client.get(f"{KINDS}/nope/runs", headers=client_headers).status_code == 404


@pytest.mark.parametrize(
    ("parameters", "field", "reason"),
    [
        ({}, "nominal_voltage", "required"),
        ({"nominal_voltage": "high"}, "nominal_voltage", "valid number"),
        ({"nominal_voltage": -1}, "nominal_voltage", "greater than 0"),
        ({"nominal_voltage": 120, "low_pu": 1.1}, "high_pu", "above low_pu"),
        ({"nominal_voltage": 120, "colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_parameters_are_validated_naming_the_field(
    client, client_headers, parameters, field, reason
):
    response = client.post(
        f"{REPORT}/runs", json={"parameters": parameters}, headers=client_headers
    )
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["code"] == "VALIDATION_FAILED" and field in body["message"]
    assert reason in body["errors"]["json"]["parameters"][field][0]


def test_parameters_must_be_an_object(client, client_headers):
    response = client.post(f"{REPORT}/runs", json={"parameters": [1]}, headers=client_headers)
    assert response.status_code == 422
    assert "parameters" in response.get_json()["errors"]["json"]


def test_a_run_waits_visibly_until_a_worker_runs_its_kind(client, client_headers, worker_headers):
    body = {"parameters": {"nominal_voltage": 2401.7771}, "timeout_seconds": 60}
    response = client.post(f"{REPORT}/runs", json=body, headers=client_headers)
    assert response.status_code == 201
    run = response.get_json()
    assert response.headers["Location"].endswith(f"{REPORT}/runs/{run['id']}")
    assert run["state"] == "READY" and run["job_kind"] == "voltage_report"
    assert run["parameters"] == {"nominal_voltage": 2401.7771}
    assert run["timeout_seconds"] == 60 and run["max_retries"] == 1
    assert "No worker runs job kind 'voltage_report'" in run["waiting_reason"]

    announce = {"worker_id": "w1", "kinds": ["voltage_report"]}
    assert (
        client.put("/api/v1.0/worker/job-kinds", json=announce, headers=worker_headers).status_code
        == 204
    )
    shown = client.get(f"{REPORT}/runs/{run['id']}", headers=client_headers).get_json()
    assert shown["waiting_reason"] is None
    assert client.get(REPORT, headers=client_headers).get_json()["workers"] == 1

    listed = client.get(f"{REPORT}/runs?state=READY", headers=client_headers).get_json()
    assert [item["id"] for item in listed["items"]] == [run["id"]]
    # Under another kind, the run does not exist.
    other = client.get(f"{KINDS}/csv_summary/runs/{run['id']}", headers=client_headers)
    assert other.status_code == 404

    cancelled = client.post(f"{REPORT}/runs/{run['id']}/cancel", headers=client_headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "CANCELLED"


def test_a_worker_claims_a_job_run_with_its_spec(client, client_headers, worker_headers):
    body = {"parameters": {"nominal_voltage": 120}}
    run = client.post(f"{REPORT}/runs", json=body, headers=client_headers).get_json()
    claim = client.post(
        f"/api/v1.0/worker/runs/{run['id']}/claim",
        json={"worker_id": "w", "claim_token": "t1"},
        headers=worker_headers,
    ).get_json()
    assert claim["kind"] == "job"
    assert claim["job"] == {
        "kind": "voltage_report", "parameters": {"nominal_voltage": 120}, "files": [],
        "inputs": [],
    }  # fmt: skip


def test_idempotent_create(client, client_headers):
    headers = {**client_headers, "Idempotency-Key": "job-1"}
    body = {"parameters": {"nominal_voltage": 120}}
    first = client.post(f"{REPORT}/runs", json=body, headers=headers)
    again = client.post(f"{REPORT}/runs", json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == first.get_json()["id"]


def _pipeline_id(client, client_headers) -> str:
    body = {"name": "ieee13", "model": "m.glm"}
    return client.post("/api/v1.0/pipelines", json=body, headers=client_headers).get_json()["id"]


def test_workflow_node_may_be_a_job_kind(client, client_headers):
    pipeline_id = _pipeline_id(client, client_headers)
    nodes = [
        {"name": "sim", "pipeline_id": pipeline_id},
        {
            "name": "report",
            "job_kind": "voltage_report",
            "parameters": {"nominal_voltage": 2401.7771},
            "inputs": [{"name": "v.csv", "from": {"node": "sim", "artifact": "v.csv"}}],
        },
    ]
    response = client.post(
        "/api/v1.0/workflows", json={"name": "w", "nodes": nodes}, headers=client_headers
    )
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()["nodes"]
    assert stored[1]["job_kind"] == "voltage_report" and stored[1].get("pipeline_id") is None


@pytest.mark.parametrize(
    ("node", "field", "reason"),
    [
        ({"job_kind": "nope"}, "job_kind", "no job kind 'nope'"),
        ({"job_kind": "voltage_report"}, "parameters", "required"),
        ({"job_kind": "voltage_report", "pipeline_id": "PID"}, "pipeline_id", "exactly one"),
        ({}, "pipeline_id", "exactly one"),
    ],
)
def test_workflow_job_nodes_are_checked(client, client_headers, node, field, reason):
    pipeline_id = _pipeline_id(client, client_headers)
    node = {k: (pipeline_id if v == "PID" else v) for k, v in node.items()}
    body = {"name": "w", "nodes": [{"name": "a", **node}]}
    response = client.post("/api/v1.0/workflows", json=body, headers=client_headers)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    found = errors.get("json", errors)["nodes"]["0"]
    assert reason in str(found[field])


def test_a_schedule_starts_a_job_run_with_checked_parameters(app, client, client_headers):
    target = {"type": "job_kind", "id": "voltage_report", "run": {"parameters": {}}}
    body = {"name": "nightly report", "cron": "@daily", "target": target}
    bad = client.post("/api/v1.0/schedules", json=body, headers=client_headers)
    assert bad.status_code == 422, bad.get_json()
    assert "nominal_voltage" in str(bad.get_json()["errors"]["target"]["run"]["parameters"])
    unknown = {**body, "target": {**target, "id": "nope"}}
    missing = client.post("/api/v1.0/schedules", json=unknown, headers=client_headers)
    assert missing.status_code == 422 and "nope" in str(missing.get_json()["errors"]["target"])

    target["run"] = {"parameters": {"nominal_voltage": 2401.7771}}
    schedule = client.post("/api/v1.0/schedules", json=body, headers=client_headers).get_json()
    first = datetime.fromisoformat(schedule["next_fire_times"][0])
    started = tick(db.session, app.config["SETTINGS"], now=first + timedelta(seconds=1))
    assert len(started) == 1
    run = client.get(f"{REPORT}/runs/{started[0]}", headers=client_headers).get_json()
    assert run["parameters"] == {"nominal_voltage": 2401.7771}
    assert run["started_by"]["schedule_id"] == schedule["id"]
    shown = client.get(f"/api/v1.0/schedules/{schedule['id']}", headers=client_headers).get_json()
    assert shown["fires"][0]["run_url"] == f"{REPORT}/runs/{started[0]}"
