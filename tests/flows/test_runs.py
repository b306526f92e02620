"""Flow runs through the client and worker APIs (in process): create with an
Idempotency-Key, the claim's job with the connection info, steps, cancel by both paths,
logs; secrets appear only in the claim answer."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from app.extensions import db
from app.schedules.firing import tick

# The ``stores`` fixture and the app with flow settings come from test_api / conftest.
from tests.flows.test_api import (
    API,
    _post,
    flow_input_body,
    stores,  # noqa: F401
)


def _flow_input(client, headers, stores) -> str:  # noqa: F811
    response = _post(client, headers, "/flow-inputs", flow_input_body(stores))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_flow_run_lifecycle(client, client_headers, worker_headers, stores):  # noqa: F811
    flow_input_id = _flow_input(client, client_headers, stores)
    headers = {**client_headers, "Idempotency-Key": "flow-1"}
    first = client.post(f"{API}/flows", json={"flow_input_id": flow_input_id}, headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post(f"{API}/flows", json={"flow_input_id": flow_input_id}, headers=headers)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    run = first.get_json()
    assert run["state"] == "READY" and run["flow_input_id"] == flow_input_id
    assert first.headers["Location"].endswith(f"/flows/{run['id']}")

    claim = client.post(
        f"{API}/worker/runs/{run['id']}/claim",
        json={"worker_id": "w1", "claim_token": uuid.uuid4().hex},
        headers=worker_headers,
    )
    assert claim.status_code == 200, claim.get_json()
    job = claim.get_json()["job"]
    assert claim.get_json()["kind"] == "flow"
    assert job["sources"][0]["store"]["password"] == "s3cret-pg"  # decrypted, for this run
    assert job["order"][0] in ("meter_daily", "meter_info")
    assert job["target"]["engine"] == "duckdb"

    steps = [{"name": "ingest meters", "kind": "ingest", "state": "COMPLETED", "rows": 30,
              "seconds": 0.01, "message": None}]  # fmt: skip
    response = client.put(
        f"{API}/worker/runs/{run['id']}/flow-steps",
        json={"attempt": 1, "steps": steps},
        headers=worker_headers,
    )
    assert response.status_code == 204, response.get_json()
    stale = client.put(
        f"{API}/worker/runs/{run['id']}/flow-steps",
        json={"attempt": 2, "steps": steps},
        headers=worker_headers,
    )
    assert stale.status_code == 409 and stale.get_json()["code"] == "STALE_ATTEMPT"
    shown = client.get(f"{API}/flows/{run['id']}", headers=client_headers).get_json()
    assert shown["state"] == "RUNNING" and shown["steps"] == steps
    assert "s3cret-pg" not in client.get(f"{API}/flows", headers=client_headers).get_data(True)

    client.post(
        f"{API}/worker/runs/{run['id']}/logs",
        json={"attempt": 1, "first_seq": 1, "lines": ["ingest meters: 30 rows in 0.010 s"]},
        headers=worker_headers,
    )
    logs = client.get(f"{API}/flows/{run['id']}/logs?after=0", headers=client_headers)
    assert [line["line"] for line in logs.get_json()["lines"]] == [
        "ingest meters: 30 rows in 0.010 s"
    ]

    # The design's cancel path and the API's own path do the same.
    cancel = client.post(f"{API}/flows/cancel/{run['id']}", headers=client_headers)
    assert cancel.status_code == 200 and cancel.get_json()["state"] == "CANCELLING"
    status = client.post(
        f"{API}/worker/runs/{run['id']}/heartbeat", json={"attempt": 1}, headers=worker_headers
    ).get_json()
    assert status["cancel_requested"] is True
    client.post(
        f"{API}/worker/runs/{run['id']}/state",
        json={"attempt": 1, "state": "CANCELLED"},
        headers=worker_headers,
    )
    ended = client.post(f"{API}/flows/{run['id']}/cancel", headers=client_headers)
    assert ended.status_code == 409 and ended.get_json()["code"] == "RUN_ENDED"


def test_cancel_ready_flow_and_unknown_ids(client, client_headers, stores):  # noqa: F811
    flow_input_id = _flow_input(client, client_headers, stores)
    run = _post(client, client_headers, "/flows", {"flow_input_id": flow_input_id}).get_json()
    cancelled = client.post(f"{API}/flows/{run['id']}/cancel", headers=client_headers)
    assert cancelled.get_json()["state"] == "CANCELLED"
    listed = client.get(f"{API}/flows?state=CANCELLED", headers=client_headers).get_json()
    assert [item["id"] for item in listed["items"]] == [run["id"]]
    missing = _post(client, client_headers, "/flows", {"flow_input_id": "nope"})
    assert missing.status_code == 422
    assert missing.get_json()["errors"]["json"]["flow_input_id"]
    assert client.get(f"{API}/flows/nope", headers=client_headers).status_code == 404
    assert client.post(f"{API}/flows/cancel/nope", headers=client_headers).status_code == 404


def test_a_schedule_starts_a_flow(app, client, client_headers, stores):  # noqa: F811
    flow_input_id = _flow_input(client, client_headers, stores)
    target = {"type": "flow_input", "id": "no-such-input", "run": {}}
    body = {"name": "hourly", "cron": "0 * * * *", "target": target}
    missing = client.post(f"{API}/schedules", json=body, headers=client_headers)
    assert missing.status_code == 422 and "no-such-input" in str(missing.get_json()["errors"])

    target["id"] = flow_input_id
    schedule = client.post(f"{API}/schedules", json=body, headers=client_headers).get_json()
    first = datetime.fromisoformat(schedule["next_fire_times"][0])
    started = tick(db.session, app.config["SETTINGS"], now=first + timedelta(seconds=1))
    assert len(started) == 1
    run = client.get(f"{API}/flows/{started[0]}", headers=client_headers).get_json()
    assert run["flow_input_id"] == flow_input_id and run["state"] == "READY"
    assert run["started_by"]["schedule_id"] == schedule["id"]


def test_a_password_the_key_cannot_decrypt_fails_the_flow_at_its_claim(
    client, client_headers, worker_headers, stores, change_key  # noqa: F811
):  # fmt: skip
    flow_input_id = _flow_input(client, client_headers, stores)
    run = _post(client, client_headers, "/flows", {"flow_input_id": flow_input_id}).get_json()
    change_key()
    claim = client.post(
        f"{API}/worker/runs/{run['id']}/claim",
        json={"worker_id": "w1", "claim_token": uuid.uuid4().hex},
        headers=worker_headers,
    )
    # The worker is told the run is not for it (it stops there), and why.
    assert claim.status_code == 409, claim.get_data(as_text=True)
    answer = claim.get_json()
    assert answer["code"] == "RUN_NOT_CLAIMABLE"
    expected = (
        f"The password of data store meters ({stores['pg']}) cannot be decrypted with the "
        f"current FLOWS_SECRET_KEY; set it again (PUT /data-stores/{stores['pg']})"
    )
    assert answer["message"] == f"Run cannot start: {expected}"
    ended = client.get(f"{API}/flows/{run['id']}", headers=client_headers).get_json()
    assert ended["state"] == "FAILED"
    assert [s["state"] for s in ended["states"]] == ["READY", "RUNNING", "FAILED"]
    assert ended["error"] == {
        "type": "PASSWORD_UNREADABLE", "message": expected, "details": {"store_id": stores["pg"]},
    }  # fmt: skip
    again = client.post(
        f"{API}/worker/runs/{run['id']}/claim",
        json={"worker_id": "w2", "claim_token": uuid.uuid4().hex},
        headers=worker_headers,
    )
    assert again.status_code == 409 and again.get_json()["code"] == "RUN_NOT_CLAIMABLE"
    assert "s3cret-pg" not in claim.get_data(as_text=True) + str(ended)
