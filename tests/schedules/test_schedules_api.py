"""The schedules API: create, read, edit, pause, delete; every mistake a 422 naming the field."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.schedules.conftest import API, schedule_body


def test_create_shows_timing_target_and_next_fire_times(client, client_headers, schedule, pipeline):
    assert schedule["target"] == {
        "type": "pipeline",
        "id": pipeline["id"],
        "run": {"parameters": {"B": 2}},
    }
    assert schedule["enabled"] is True and schedule["misfire"] == "run_once"
    assert schedule["timezone"] == "UTC" and schedule["interval_seconds"] is None
    times = [datetime.fromisoformat(t) for t in schedule["next_fire_times"]]
    assert len(times) == 5 and all(t.second == 0 and t.tzinfo for t in times)
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)] == [60.0] * 4
    assert schedule["fires"] == []
    assert schedule["timing_description"].startswith("Every minute")
    got = client.get(f"{API}/{schedule['id']}", headers=client_headers)
    assert got.status_code == 200 and got.get_json()["id"] == schedule["id"]
    listed = client.get(API, headers=client_headers).get_json()
    assert [item["id"] for item in listed["items"]] == [schedule["id"]]


def test_cron_in_a_time_zone(client, client_headers, pipeline):
    body = schedule_body(pipeline["id"], cron="0 9 * * MON-FRI", timezone="Europe/Paris")
    created = client.post(API, json=body, headers=client_headers).get_json()
    for text in created["next_fire_times"]:
        moment = datetime.fromisoformat(text)
        assert moment.weekday() < 5 and moment.hour in (7, 8)  # 09:00 CEST or CET, in UTC


def test_interval(client, client_headers, pipeline):
    body = schedule_body(pipeline["id"], cron=None, interval_seconds=120)
    created = client.post(API, json=body, headers=client_headers)
    assert created.status_code == 201, created.get_json()
    times = [datetime.fromisoformat(t) for t in created.get_json()["next_fire_times"]]
    assert {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)} == {120.0}


@pytest.mark.parametrize(
    ("fields", "where", "reason"),
    [
        ({"cron": "61 * * * *"}, ("cron",), "Bad minute"),
        ({"cron": "* * *"}, ("cron",), "five-field"),
        ({"cron": "0 0 30 2 *"}, ("cron",), "Bad day-of-month"),
        ({"timezone": "Mars/Olympus"}, ("timezone",), "Unknown time zone"),
        ({"timezone": "../../etc/passwd"}, ("timezone",), "IANA"),
        ({"cron": None, "interval_seconds": 59}, ("interval_seconds",), "SCHEDULE_MIN_INTERVAL"),
        ({"cron": None, "interval_seconds": 60.5}, ("interval_seconds",), "integer"),
        ({"cron": None}, ("cron",), "cron expression or interval_seconds"),
        ({"interval_seconds": 600}, ("cron",), "not both"),
        ({"misfire": "sometimes"}, ("misfire",), "Must be one of"),
        ({"enabled": "yes"}, ("enabled",), "boolean"),
    ],
)
def test_bad_timing_is_422_naming_the_field(
    client, client_headers, pipeline, fields, where, reason
):
    body = schedule_body(pipeline["id"], **fields)
    response = client.post(API, json=body, headers=client_headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["code"] == "VALIDATION_FAILED"
    found = error["errors"]["json"]
    for key in where:
        found = found[key]
    assert reason in str(found), error


@pytest.mark.parametrize(
    ("target", "where", "reason"),
    [
        (
            {"type": "rocket", "id": "x"},
            ("type",),
            "Must be one of: flow_input, job_kind, pipeline, workflow",
        ),
        ({"type": "pipeline", "id": "no-such-id"}, ("id",), "No pipeline no-such-id"),
        ({"type": "workflow", "id": "no-such-id"}, ("id",), "No workflow no-such-id"),
    ],
)
def test_unknown_target_is_422_naming_it(client, client_headers, target, where, reason):
    response = client.post(
        API, json={"name": "x", "cron": "@daily", "target": target}, headers=client_headers
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["target"][where[0]] == [reason]


def test_run_body_is_checked_as_the_create_run_request_checks_it(client, client_headers, pipeline):
    run = {"parameters": {"bad name": 1}, "timeout_seconds": 0}
    body = schedule_body(
        pipeline["id"], target={"type": "pipeline", "id": pipeline["id"], "run": run}
    )
    response = client.post(API, json=body, headers=client_headers)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["target"]["run"]
    assert set(errors) == {"parameters", "timeout_seconds"}


def test_workflow_target_checks_node_names(client, client_headers, pipeline):
    workflow = client.post(
        "/api/v1.0/workflows",
        json={"name": "w", "nodes": [{"name": "a", "pipeline_id": pipeline["id"]}]},
        headers=client_headers,
    ).get_json()
    target = {"type": "workflow", "id": workflow["id"], "run": {"parameters": {"zz": {"A": 1}}}}
    response = client.post(API, json=schedule_body("", target=target), headers=client_headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]["target"]["run"] == {
        "parameters": {"zz": ["No such node"]}
    }
    target["run"] = {"parameters": {"a": {"A": 3}}}
    response = client.post(API, json=schedule_body("", target=target), headers=client_headers)
    assert response.status_code == 201, response.get_json()


def test_pause_clears_next_fire_times_and_resume_restores_them(client, client_headers, schedule):
    url = f"{API}/{schedule['id']}"
    body = {k: schedule[k] for k in ("name", "cron", "timezone", "target", "misfire")}
    paused = client.put(url, json={**body, "enabled": False}, headers=client_headers)
    assert paused.status_code == 200 and paused.get_json()["next_fire_times"] == []
    resumed = client.put(url, json={**body, "enabled": True}, headers=client_headers).get_json()
    assert len(resumed["next_fire_times"]) == 5


def test_edit_replaces_the_timing(client, client_headers, schedule):
    url = f"{API}/{schedule['id']}"
    body = {k: schedule[k] for k in ("name", "target", "misfire")}
    edited = client.put(
        url, json={**body, "cron": "0 3 * * *", "timezone": "Asia/Tokyo"}, headers=client_headers
    ).get_json()
    assert edited["cron"] == "0 3 * * *"
    assert all(datetime.fromisoformat(t).hour == 18 for t in edited["next_fire_times"])


def test_delete(client, client_headers, schedule):
    url = f"{API}/{schedule['id']}"
    assert client.delete(url, headers=client_headers).status_code == 204
    assert client.get(url, headers=client_headers).status_code == 404
    assert client.delete(url, headers=client_headers).status_code == 404


def test_a_scheduled_pipeline_cannot_be_deleted(client, client_headers, schedule, pipeline):
    response = client.delete(f"/api/v1.0/pipelines/{pipeline['id']}", headers=client_headers)
    assert response.status_code == 409
    error = response.get_json()
    assert error["code"] == "PIPELINE_IN_USE"
    assert schedule["id"] in error["message"]
    client.delete(f"{API}/{schedule['id']}", headers=client_headers)
    response = client.delete(f"/api/v1.0/pipelines/{pipeline['id']}", headers=client_headers)
    assert response.status_code == 204


def test_a_scheduled_workflow_cannot_be_deleted(client, client_headers, pipeline):
    workflow = client.post(
        "/api/v1.0/workflows",
        json={"name": "w", "nodes": [{"name": "a", "pipeline_id": pipeline["id"]}]},
        headers=client_headers,
    ).get_json()
    target = {"type": "workflow", "id": workflow["id"]}
    created = client.post(API, json=schedule_body("", target=target), headers=client_headers)
    response = client.delete(f"/api/v1.0/workflows/{workflow['id']}", headers=client_headers)
    assert response.status_code == 409
    assert response.get_json()["code"] == "WORKFLOW_IN_USE"
    assert created.get_json()["id"] in response.get_json()["message"]
