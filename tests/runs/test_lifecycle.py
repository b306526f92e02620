"""The run lifecycle through the worker and client APIs: claims, attempts, leases, logs,
artifacts, cancellation, retries and the sweeper."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from kombu import Connection
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.celery_config import TASK_PIPELINE_RUN
from app.extensions import db
from app.runs.models import IdempotencyRecord, Run
from app.runs.states import TRANSITIONS, RunState
from app.runs.sweeper import LeaseGrace, sweep_once, sweep_pass
from app.timeutil import utcnow

W = "/api/v1.0/worker/runs"


@pytest.fixture
def urls(pipeline, run):
    base = f"/api/v1.0/pipelines/{pipeline['id']}/runs/{run['id']}"
    return {"run": base, "worker": f"{W}/{run['id']}"}


def claim(client, headers, urls, worker="w1", token=None):
    """Claim as a new delivery (a fresh claim token) unless ``token`` repeats one."""
    body = {"worker_id": worker, "claim_token": token or uuid.uuid4().hex}
    return client.post(f"{urls['worker']}/claim", json=body, headers=headers)


def get_run(client, headers, urls):
    return client.get(urls["run"], headers=headers).get_json()


def finish(client, headers, urls, attempt, state, error=None):
    return client.post(
        f"{urls['worker']}/state",
        json={"attempt": attempt, "state": state, "error": error},
        headers=headers,
    )


def test_terminal_states_have_no_way_out():
    for state in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED):
        assert state.is_final and TRANSITIONS[state] == frozenset()


def test_claim_once_only(client, worker_headers, urls):
    first = claim(client, worker_headers, urls)
    assert first.status_code == 200 and first.get_json()["attempt"] == 1
    second = claim(client, worker_headers, urls, worker="w2")
    assert second.status_code == 409  # a duplicate message never runs the job twice
    assert second.get_json()["code"] == "RUN_NOT_CLAIMABLE"


def test_a_repeated_claim_gets_the_same_attempt(client, client_headers, worker_headers, urls):
    first = claim(client, worker_headers, urls, token="delivery-1")
    again = claim(client, worker_headers, urls, token="delivery-1")
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["attempt"] == first.get_json()["attempt"] == 1
    assert again.get_json()["job"] == first.get_json()["job"]
    body = get_run(client, client_headers, urls)
    assert [s["state"] for s in body["states"]] == ["READY", "RUNNING"]  # one attempt
    assert claim(client, worker_headers, urls, token="delivery-2").status_code == 409
    assert finish(client, worker_headers, urls, 1, "COMPLETED").status_code == 200
    ended = claim(client, worker_headers, urls, token="delivery-1")  # too late: it ended
    assert ended.status_code == 409 and ended.get_json()["code"] == "RUN_NOT_CLAIMABLE"


def test_claim_of_missing_run_is_404(client, worker_headers):
    response = client.post(
        f"{W}/nope/claim", json={"worker_id": "w", "claim_token": "t"}, headers=worker_headers
    )
    assert response.status_code == 404
    assert response.get_json()["code"] == "NOT_FOUND"


def test_full_attempt_is_recorded(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    progress = client.post(
        f"{urls['worker']}/progress",
        json={"attempt": 1, "percent": 50, "message": "half"},
        headers=worker_headers,
    )
    assert progress.get_json() == {"state": "RUNNING", "cancel_requested": False}
    logs = client.post(
        f"{urls['worker']}/logs",
        json={"attempt": 1, "first_seq": 1, "lines": ["one", "two"]},
        headers=worker_headers,
    )
    assert logs.get_json() == {"next_seq": 3}
    upload = client.put(
        f"{urls['worker']}/artifacts/out/v.csv?attempt=1", data=b"a,b\n", headers=worker_headers
    )
    assert upload.status_code == 201
    assert finish(client, worker_headers, urls, 1, "COMPLETED").status_code == 200
    body = get_run(client, client_headers, urls)
    assert body["state"] == "COMPLETED" and body["progress"]["percent"] == 50
    assert [s["state"] for s in body["states"]] == ["READY", "RUNNING", "COMPLETED"]
    assert body["started_at"] and body["finished_at"]
    assert [(a["name"], a["size"]) for a in body["artifacts"]] == [("out/v.csv", 4)]
    download = client.get(f"{urls['run']}/artifacts/out/v.csv", headers=client_headers)
    assert download.status_code == 200 and download.data == b"a,b\n"


def test_logs_resend_is_harmless_and_gap_is_refused(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    post = lambda first, lines: client.post(  # noqa: E731
        f"{urls['worker']}/logs",
        json={"attempt": 1, "first_seq": first, "lines": lines},
        headers=worker_headers,
    )
    post(1, ["a", "b"])
    assert post(1, ["a", "b", "c"]).get_json() == {"next_seq": 4}
    gap = post(9, ["z"])
    assert gap.status_code == 409 and gap.get_json()["code"] == "LOG_GAP"
    page = client.get(f"{urls['run']}/logs?after=1", headers=client_headers).get_json()
    assert [(line["seq"], line["line"]) for line in page["lines"]] == [(2, "b"), (3, "c")]
    assert page["next_after"] == 3 and page["complete"] is False


def test_logs_stay_readable_after_the_end(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    client.post(
        f"{urls['worker']}/logs",
        json={"attempt": 1, "first_seq": 1, "lines": ["x"]},
        headers=worker_headers,
    )
    finish(client, worker_headers, urls, 1, "FAILED", {"type": "CRASH", "message": "boom"})
    page = client.get(f"{urls['run']}/logs", headers=client_headers).get_json()
    assert [line["line"] for line in page["lines"]] == ["x"] and page["complete"] is True


def test_cancel_ready_run_never_starts(client, client_headers, worker_headers, urls):
    response = client.post(f"{urls['run']}/cancel", headers=client_headers)
    assert response.status_code == 200 and response.get_json()["state"] == "CANCELLED"
    assert claim(client, worker_headers, urls).status_code == 409
    assert get_run(client, client_headers, urls)["error"]["type"] == "CANCELLED"


def test_cancel_running_goes_through_cancelling(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    assert client.post(f"{urls['run']}/cancel", headers=client_headers).get_json()["state"] == (
        "CANCELLING"
    )
    again = client.post(f"{urls['run']}/cancel", headers=client_headers)
    assert again.status_code == 200 and again.get_json()["state"] == "CANCELLING"
    beat = client.post(f"{urls['worker']}/heartbeat", json={"attempt": 1}, headers=worker_headers)
    assert beat.get_json() == {"state": "CANCELLING", "cancel_requested": True}
    partial = client.put(
        f"{urls['worker']}/artifacts/p.csv?attempt=1&partial=true",
        data=b"1",
        headers=worker_headers,
    )
    assert partial.status_code == 201 and partial.get_json()["partial"] is True
    finish(client, worker_headers, urls, 1, "CANCELLED")
    body = get_run(client, client_headers, urls)
    assert [s["state"] for s in body["states"]] == ["READY", "RUNNING", "CANCELLING", "CANCELLED"]


def test_cancel_finished_run_is_409_with_reason(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    finish(client, worker_headers, urls, 1, "COMPLETED")
    response = client.post(f"{urls['run']}/cancel", headers=client_headers)
    assert response.status_code == 409 and response.get_json()["code"] == "RUN_ENDED"
    assert "COMPLETED" in response.get_json()["message"]


def test_terminal_state_never_flips(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    finish(client, worker_headers, urls, 1, "FAILED", {"type": "MODEL_ERROR", "message": "m"})
    late = finish(client, worker_headers, urls, 1, "COMPLETED")
    assert late.status_code == 409 and late.get_json()["code"] == "STALE_ATTEMPT"
    for path, body in [
        ("heartbeat", {"attempt": 1}),
        ("progress", {"attempt": 1, "percent": 1}),
        ("logs", {"attempt": 1, "first_seq": 1, "lines": ["late"]}),
    ]:
        response = client.post(f"{urls['worker']}/{path}", json=body, headers=worker_headers)
        assert response.status_code == 409, path
        assert response.get_json()["code"] == "STALE_ATTEMPT", path
    assert get_run(client, client_headers, urls)["state"] == "FAILED"


def _expire_lease(run_id):
    run = db.session.get(Run, run_id)
    run.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def _make_due(run_id):
    run = db.session.get(Run, run_id)
    run.not_before = utcnow() - timedelta(seconds=1)
    db.session.commit()


def test_lost_worker_is_retried_then_fails(app, client, client_headers, worker_headers, urls, run):
    settings = app.config["SETTINGS"]
    db.session.get(Run, run["id"]).max_retries = 1
    db.session.commit()
    claim(client, worker_headers, urls)
    _expire_lease(run["id"])
    assert sweep_once(db.session, settings)["expired"] == 1
    body = get_run(client, client_headers, urls)
    assert body["state"] == "READY" and "WORKER_LOST" in body["states"][-1]["reason"]
    backing_off = claim(client, worker_headers, urls)
    assert backing_off.status_code == 409 and backing_off.get_json()["code"] == "RUN_NOT_CLAIMABLE"
    _make_due(run["id"])
    second = claim(client, worker_headers, urls, worker="w2")
    assert second.get_json()["attempt"] == 2
    # The superseded attempt's late report is refused: it cannot end the new attempt.
    assert finish(client, worker_headers, urls, 1, "COMPLETED").status_code == 409
    _expire_lease(run["id"])
    sweep_once(db.session, settings)
    body = get_run(client, client_headers, urls)
    assert body["state"] == "FAILED" and body["error"]["type"] == "WORKER_LOST"
    assert body["attempt"] == 2


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_leases_that_ran_out_during_an_outage_get_a_lease_period(
    app, client, client_headers, worker_headers, urls, run
):
    """A sweeper that has just started (the API was down), or that found the database
    down, leaves expired leases alone for a lease period: a healthy worker renews in it."""
    settings = app.config["SETTINGS"]
    clock = FakeClock()
    grace = LeaseGrace(settings.RUN_LEASE_SECONDS, clock)
    claim(client, worker_headers, urls)
    _expire_lease(run["id"])  # no heartbeat arrived during the outage
    assert sweep_pass(db.session, settings, grace)["expired"] == 0
    assert get_run(client, client_headers, urls)["state"] == "RUNNING"
    # The worker's renewal arrives; once the grace is over, nothing is left to expire.
    beat = client.post(f"{urls['worker']}/heartbeat", json={"attempt": 1}, headers=worker_headers)
    assert beat.status_code == 200, beat.get_json()
    clock.now += settings.RUN_LEASE_SECONDS
    assert sweep_pass(db.session, settings, grace)["expired"] == 0
    # A worker that really is gone is still found, once its lease has run out.
    _expire_lease(run["id"])
    assert sweep_pass(db.session, settings, grace)["expired"] == 1
    assert get_run(client, client_headers, urls)["states"][-1]["from_state"] == "RUNNING"


def test_a_sweep_that_finds_the_database_down_restarts_the_grace(app, monkeypatch):
    settings = app.config["SETTINGS"]
    clock = FakeClock()
    grace = LeaseGrace(settings.RUN_LEASE_SECONDS, clock)
    clock.now += settings.RUN_LEASE_SECONDS
    assert grace.over()

    def database_down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr("app.runs.sweeper.sweep_once", database_down)
    assert sweep_pass(db.session, settings, grace) is None  # logged, never raised
    assert not grace.over()
    clock.now += settings.RUN_LEASE_SECONDS
    assert grace.over()

    def bug(*_args, **_kwargs):
        raise RuntimeError("a bug in one check")

    monkeypatch.setattr("app.runs.sweeper.sweep_once", bug)
    assert sweep_pass(db.session, settings, grace) is None
    assert grace.over()  # only an unreachable database holds lease expiry back


def test_model_errors_are_not_retried(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    error = {"type": "MODEL_ERROR", "message": "m.glm(3): bad", "details": {"line": 3}}
    finish(client, worker_headers, urls, 1, "FAILED", error)
    body = get_run(client, client_headers, urls)
    assert body["state"] == "FAILED" and body["error"] == {**error}


def test_infrastructure_errors_are_retried(client, client_headers, worker_headers, urls):
    claim(client, worker_headers, urls)
    finish(
        client, worker_headers, urls, 1, "FAILED", {"type": "INFRASTRUCTURE_ERROR", "message": "s3"}
    )
    body = get_run(client, client_headers, urls)
    assert body["state"] == "READY" and body["error"] is None


def test_sweeper_times_out_a_run_its_worker_did_not_stop(
    app, client, client_headers, worker_headers, urls, run
):
    claim(client, worker_headers, urls)
    row = db.session.get(Run, run["id"])
    row.deadline_at = utcnow() - timedelta(seconds=app.config["SETTINGS"].TIMEOUT_GRACE_SECONDS + 1)
    db.session.commit()
    assert sweep_once(db.session, app.config["SETTINGS"])["timed_out"] == 1
    body = get_run(client, client_headers, urls)
    assert body["state"] == "FAILED" and body["error"]["type"] == "TIMEOUT"


def test_sweeper_expires_cancelling_run_to_cancelled(
    app, client, client_headers, worker_headers, urls, run
):
    claim(client, worker_headers, urls)
    client.post(f"{urls['run']}/cancel", headers=client_headers)
    _expire_lease(run["id"])
    sweep_once(db.session, app.config["SETTINGS"])
    assert get_run(client, client_headers, urls)["state"] == "CANCELLED"


def take_messages(queue: str) -> list[tuple[str, list]]:
    """Take every message off the in-memory broker's ``queue``: (task name, args) each."""
    taken = []
    with Connection("memory://") as connection:
        simple = connection.SimpleQueue(queue)
        while True:
            try:
                message = simple.get(block=False)
            except simple.Empty:
                break
            taken.append((message.headers["task"], message.decode()[0]))
            message.ack()
        simple.close()
    return taken


def start_from_message(client, worker_headers, message: tuple[str, list]) -> dict:
    """Do what a worker does with a run's message: claim the run it names."""
    task, (run_id,) = message
    assert task == TASK_PIPELINE_RUN
    body = {"worker_id": "w", "claim_token": uuid.uuid4().hex}
    response = client.post(f"{W}/{run_id}/claim", json=body, headers=worker_headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_unpublished_run_is_published_by_the_sweeper(
    app, client, client_headers, worker_headers, urls, run
):
    """Broker down at submit: the sweeper's publish is what starts the run."""
    queue = app.config["SETTINGS"].CELERY_TASK_QUEUE
    take_messages(queue)
    row = db.session.get(Run, run["id"])
    row.dispatched_at = None
    db.session.commit()
    assert sweep_once(db.session, app.config["SETTINGS"])["published"] == 1
    messages = take_messages(queue)
    assert messages == [(TASK_PIPELINE_RUN, [run["id"]])]
    assert start_from_message(client, worker_headers, messages[0])["attempt"] == 1
    assert get_run(client, client_headers, urls)["state"] == "RUNNING"


def test_run_whose_message_was_lost_is_published_again(
    app, client, client_headers, worker_headers, urls, run
):
    """Published, never claimed (the broker lost the message): sent again once stale."""
    settings = app.config["SETTINGS"]
    assert take_messages(settings.CELERY_TASK_QUEUE)[-1:] == [(TASK_PIPELINE_RUN, [run["id"]])]
    # The message is gone. Before REDISPATCH_AFTER_SECONDS nothing is sent again...
    assert sweep_once(db.session, settings)["published"] == 0
    assert take_messages(settings.CELERY_TASK_QUEUE) == []
    # ...after it, the run is published again, and that message starts it.
    stale = utcnow() - timedelta(seconds=settings.REDISPATCH_AFTER_SECONDS + 1)
    db.session.get(Run, run["id"]).dispatched_at = stale
    db.session.commit()
    assert sweep_once(db.session, settings)["published"] == 1
    messages = take_messages(settings.CELERY_TASK_QUEUE)
    assert messages == [(TASK_PIPELINE_RUN, [run["id"]])]
    assert start_from_message(client, worker_headers, messages[0])["attempt"] == 1
    assert get_run(client, client_headers, urls)["state"] == "RUNNING"
    # A run that was claimed is never published again, however old its message.
    db.session.get(Run, run["id"]).dispatched_at = stale
    db.session.commit()
    assert sweep_once(db.session, settings)["published"] == 0
    assert take_messages(settings.CELERY_TASK_QUEUE) == []


def test_idempotent_create_run(client, client_headers, pipeline, model_file):
    url = f"/api/v1.0/pipelines/{pipeline['id']}/runs"
    headers = {**client_headers, "Idempotency-Key": "k-1"}
    first = client.post(url, json={"parameters": {"A": "2"}}, headers=headers)
    again = client.post(url, json={"parameters": {"A": "2"}}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert len(client.get(url, headers=client_headers).get_json()["items"]) == 1
    different = client.post(url, json={"parameters": {"A": "3"}}, headers=headers)
    assert different.status_code == 422
    assert different.get_json()["code"] == "IDEMPOTENCY_MISMATCH"


def _age_idempotency_record(key, seconds, status="keep"):
    record = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
    record.created_at = utcnow() - timedelta(seconds=seconds)
    if status != "keep":
        record.status = status
    db.session.commit()


def test_a_key_left_pending_by_a_dead_request_is_taken_over(
    app, client, client_headers, pipeline, model_file
):
    """A crash between recording a key and storing its answer must not wedge the key."""
    settings = app.config["SETTINGS"]
    url = f"/api/v1.0/pipelines/{pipeline['id']}/runs"
    headers = {**client_headers, "Idempotency-Key": "k-crash"}
    assert client.post(url, json={}, headers=headers).status_code == 201
    _age_idempotency_record("k-crash", 1, status=None)  # as if it died before answering
    busy = client.post(url, json={}, headers=headers)
    assert busy.status_code == 409 and busy.get_json()["code"] == "IDEMPOTENCY_IN_PROGRESS"
    _age_idempotency_record("k-crash", settings.IDEMPOTENCY_PENDING_SECONDS + 1)
    taken_over = client.post(url, json={}, headers=headers)
    assert taken_over.status_code == 201, taken_over.get_json()
    replay = client.post(url, json={}, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["id"] == taken_over.get_json()["id"]


def test_idempotency_records_expire(app, client, client_headers, pipeline, model_file):
    settings = app.config["SETTINGS"]
    url = f"/api/v1.0/pipelines/{pipeline['id']}/runs"
    headers = {**client_headers, "Idempotency-Key": "k-old"}
    first = client.post(url, json={}, headers=headers)
    _age_idempotency_record("k-old", settings.IDEMPOTENCY_TTL_SECONDS + 1)
    fresh = client.post(url, json={}, headers=headers)
    assert fresh.status_code == 201 and fresh.get_json()["id"] != first.get_json()["id"]
    assert "Idempotent-Replayed" not in fresh.headers
    _age_idempotency_record("k-old", settings.IDEMPOTENCY_TTL_SECONDS + 1)
    assert sweep_once(db.session, settings)["idempotency_purged"] == 1
    assert db.session.scalar(select(IdempotencyRecord)) is None


def test_idempotent_cancel(client, client_headers, urls):
    headers = {**client_headers, "Idempotency-Key": "c-1"}
    first = client.post(f"{urls['run']}/cancel", headers=headers)
    again = client.post(f"{urls['run']}/cancel", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_run_filters_by_state(client, client_headers, worker_headers, pipeline, urls):
    url = f"/api/v1.0/pipelines/{pipeline['id']}/runs"
    client.post(url, json={}, headers=client_headers)
    claim(client, worker_headers, urls)
    running = client.get(f"{url}?state=RUNNING", headers=client_headers).get_json()["items"]
    ready = client.get(f"{url}?state=READY", headers=client_headers).get_json()["items"]
    assert len(running) == 1 and len(ready) == 1


def test_artifact_from_stale_attempt_is_refused(client, worker_headers, urls):
    claim(client, worker_headers, urls)
    response = client.put(
        f"{urls['worker']}/artifacts/x.csv?attempt=7", data=b"1", headers=worker_headers
    )
    assert response.status_code == 409 and response.get_json()["code"] == "STALE_ATTEMPT"


def test_worker_file_download(client, client_headers, worker_headers, pipeline, urls):
    client.post(
        f"/api/v1.0/pipelines/{pipeline['id']}/files?name=model.glm",
        data=b"clock {}",
        headers=client_headers,
    )
    spec = claim(client, worker_headers, urls).get_json()["job"]
    assert spec["model"] == "model.glm" and spec["parameters"] == {"A": "1"}
    response = client.get(spec["files"][0]["url"], headers=worker_headers)
    assert response.status_code == 200 and response.data == b"clock {}"


def test_callback_is_published_once_after_the_end(
    app, client, client_headers, worker_headers, pipeline, model_file
):
    url = f"/api/v1.0/pipelines/{pipeline['id']}/runs"
    created = client.post(
        url, json={"callback_url": "http://93.184.216.34/hook"}, headers=client_headers
    )
    run_id = created.get_json()["id"]
    urls = {"worker": f"{W}/{run_id}"}
    claim(client, worker_headers, urls)
    assert sweep_once(db.session, app.config["SETTINGS"])["callbacks"] == 0  # not ended yet
    finish(client, worker_headers, urls, 1, "COMPLETED")
    assert sweep_once(db.session, app.config["SETTINGS"])["callbacks"] == 1
    assert sweep_once(db.session, app.config["SETTINGS"])["callbacks"] == 0


def test_callback_signature_is_hmac_of_the_body():
    import hashlib
    import hmac

    from app.runs.callbacks import sign

    expected = hmac.new(b"s3cret", b'{"a": 1}', hashlib.sha256).hexdigest()
    assert sign('{"a": 1}', "s3cret") == f"sha256={expected}"
