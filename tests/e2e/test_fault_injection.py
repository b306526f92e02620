"""Runs that never get stuck and never run twice: kill workers, stop Redis, restart the API,
cancel in every state, repeat requests, and submit many runs at once.

The stack runs with shortened recovery settings (harness.FAST_RECOVERY): 5 s leases, a
sweep every second, re-dispatch of unclaimed runs after 10 s, 5 s timeout grace.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from redis import Redis

from tests.e2e.conftest import IEEE13, LONG, MEDIUM, residential_files
from tests.e2e.harness import (
    FAST_RECOVERY,
    TERMINAL,
    artifact,
    describe,
    history,
    wait_until,
)
from tests.e2e.procs import alive, cmdline, descendants, kill_all, signal_group

CONCURRENT_RUNS = int(os.environ.get("E2E_CONCURRENT_RUNS", "200"))
CLIENT_THREADS = 20


def only_one_worker(stack):
    """Stop extra workers so slot counting is exact; return the one left."""
    stack.ensure_up()
    workers = stack.running_workers()
    for extra in workers[1:]:
        extra.stop()
    return workers[0]


def running_entries(run: dict) -> int:
    return sum(1 for change in run["states"] if change["state"] == "RUNNING")


# --- a worker dies mid-simulation ---------------------------------------------------------


@pytest.mark.timeout(150)
def test_worker_sigkill_mid_simulation_retries_or_fails_worker_lost(client, stack):
    worker = only_one_worker(stack)
    retried = client.pipeline_with_files(
        f"models/{MEDIUM.name}", residential_files(MEDIUM), max_retries=1, retry_backoff_seconds=0
    )
    no_retry = client.pipeline_with_files(
        f"models/{MEDIUM.name}", residential_files(MEDIUM), max_retries=0
    )
    a = client.create_run(retried["id"])
    b = client.create_run(no_retry["id"])
    for pipeline, run in ((retried, a), (no_retry, b)):
        client.wait_for_state(pipeline["id"], run["id"], "RUNNING", 60)
    wait_until(
        lambda: len(_simulations(worker)) >= 2, 30, "both simulations to be running on the worker"
    )
    # Mid-simulation: both report progress (the medium model runs for several seconds).
    for pipeline, run in ((retried, a), (no_retry, b)):
        wait_until(
            lambda p=pipeline["id"], r=run["id"]: _mid_simulation(client.get_run(p, r)),
            30,
            f"run {run['id']} to report progress",
        )

    children = descendants(worker.pid)
    killed_at = time.monotonic()
    worker.kill()  # SIGKILL to its whole process group
    try:
        # The simulations are in sessions of their own; they die by PR_SET_PDEATHSIG.
        wait_until(
            lambda: not alive(children),
            5,
            "every process of the killed worker to die with it",
            interval=0.05,
            diagnostics=lambda: f"survivors: {[(p, cmdline(p)) for p in alive(children)]}",
        )
    finally:
        kill_all(alive(children))  # clean up whatever escaped
    stack.add_worker()

    failed = client.wait_terminal(no_retry["id"], b["id"], 60)
    lost_after = time.monotonic() - killed_at
    completed = client.wait_terminal(retried["id"], a["id"], 90)
    retried_after = time.monotonic() - killed_at
    print(
        f"\nworker SIGKILL -> FAILED WORKER_LOST (max_retries=0): {lost_after:.1f} s"
        f"\nworker SIGKILL -> COMPLETED on attempt 2 (max_retries=1): {retried_after:.1f} s"
    )
    stack.timings["kill_to_failed_seconds"] = lost_after
    stack.timings["kill_to_completed_seconds"] = retried_after

    assert failed["state"] == "FAILED" and failed["error"]["type"] == "WORKER_LOST", describe(
        failed
    )
    assert failed["attempt"] == 1 and history(failed) == ["READY", "RUNNING", "FAILED"]

    assert completed["state"] == "COMPLETED", describe(completed)
    assert completed["attempt"] == 2, describe(completed)
    assert history(completed) == ["READY", "RUNNING", "READY", "RUNNING", "COMPLETED"]
    back = completed["states"][2]
    assert back["from_state"] == "RUNNING" and "WORKER_LOST" in (back["reason"] or ""), back
    assert [c["attempt"] for c in completed["states"] if c["state"] == "RUNNING"] == [1, 2]
    assert all(item["attempt"] == 2 and not item["partial"] for item in completed["artifacts"])
    artifact(completed, "medium_hourly.csv")
    # Generous bound; with default settings (30 s lease, 5 s sweeps) the target is < 60 s.
    assert lost_after < 30 and retried_after < 60


def _mid_simulation(run: dict) -> bool:
    """RUNNING with some progress and not at the end."""
    assert run["state"] == "RUNNING", describe(run)
    percent = (run.get("progress") or {}).get("percent") or 0
    return 0 < percent < 100


def _simulations(worker) -> list[int]:
    return [
        pid
        for pid in descendants(worker.pid)
        if "gridlabd" in cmdline(pid) or "glm" in cmdline(pid)
    ]


# --- the broker goes away -------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_redis_outage_with_runs_queued_and_running(client, stack):
    only_one_worker(stack)
    medium = client.pipeline_with_files(f"models/{MEDIUM.name}", residential_files(MEDIUM))
    ieee = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    runs = [(medium["id"], client.create_run(medium["id"])["id"]) for _ in range(2)]
    runs += [(ieee["id"], client.create_run(ieee["id"])["id"]) for _ in range(3)]
    for pipeline_id, run_id in runs[:2]:
        client.wait_for_state(pipeline_id, run_id, "RUNNING", 60)
    queued = [client.get_run(p, r)["state"] for p, r in runs[2:]]
    print(f"\nbefore the outage: 2 RUNNING, queued runs {queued}")

    stack.redis.stop()  # no persistence: queued messages are lost with it
    down_at = time.monotonic()
    readiness = client.get("/readiness")
    assert readiness.status_code == 503, readiness.text
    assert readiness.json()["checks"]["broker"] != "ok"

    # A submit never fails for want of a broker (ADR 0005): 201, READY, left to the sweeper.
    submitted_while_down = []
    for _ in range(2):
        started = time.monotonic()
        response = client.create_run_response(ieee["id"])
        took = time.monotonic() - started
        print(f"submit while Redis is down: {response.status_code} in {took:.1f} s")
        assert response.status_code == 201, response.text
        assert response.json()["state"] == "READY", response.text
        assert took < 15
        submitted_while_down.append((ieee["id"], response.json()["id"]))
    # Reads do not need the broker.
    assert client.get_run(*runs[0])["state"] in ("RUNNING", "COMPLETED")
    # Keep Redis down until the sweeper has met the outage too (a failed publish of the
    # runs just submitted), so the runs can only start from its publish after the outage.
    refused = _broker_refusals(stack)
    wait_until(
        lambda: _broker_refusals(stack) > refused,
        30,
        "the sweeper to find the broker down",
        diagnostics=stack.diagnostics,
    )
    stack.redis.start()
    print(f"Redis was down {time.monotonic() - down_at:.1f} s")

    everything = runs + submitted_while_down
    ended = {run_id: client.wait_terminal(p, run_id, 90) for p, run_id in everything}
    for run in ended.values():
        assert run["state"] == "COMPLETED", describe(run)
        assert run["attempt"] == 1 and running_entries(run) == 1, describe(run)
        assert run["artifacts"] and not any(a["partial"] for a in run["artifacts"])
    print(
        f"all {len(ended)} runs COMPLETED {time.monotonic() - down_at:.1f} s after the outage began"
    )


def _broker_refusals(stack) -> int:
    """How many publishes the API has left for the sweeper since it (re)started."""
    text = stack.api.log_text()
    return text[text.rfind("===== start #") :].count("Broker unavailable, jobs.run_pipeline")


@pytest.mark.timeout(120)
def test_run_whose_message_the_broker_lost_is_published_again_and_runs(client, stack):
    worker = only_one_worker(stack)
    worker.stop()  # nobody consumes: the run's message waits in Redis
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    run = client.create_run(pipeline["id"])
    # The broker loses the run's message (and any duplicate a sweep published meanwhile:
    # the submit's commit waits for a sweep that has locked the run).
    redis = Redis(port=stack.redis_port)
    messages = [m for m in redis.lrange(stack.queue, 0, -1) if run["id"].encode() in m]
    assert messages, f"no message of run {run['id']} in the Redis queue"
    assert sum(redis.lrem(stack.queue, 0, m) for m in messages) == len(messages)
    lost_at = time.monotonic()
    stack.add_worker()

    run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 60)
    assert run["attempt"] == 1 and history(run) == ["READY", "RUNNING", "COMPLETED"], describe(run)
    # It started from the sweeper's second publish, REDISPATCH_AFTER_SECONDS after the first.
    waited = (_at(run["states"][1]) - _at(run["states"][0])).total_seconds()
    assert waited >= int(FAST_RECOVERY["REDISPATCH_AFTER_SECONDS"]) - 1, describe(run)
    print(f"\nlost message: run COMPLETED {time.monotonic() - lost_at:.1f} s after the loss")


def _at(change: dict) -> datetime:
    return datetime.fromisoformat(change["at"])


# --- the API restarts -----------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_api_restart_while_runs_are_going(client, stack):
    only_one_worker(stack)
    medium = client.pipeline_with_files(f"models/{MEDIUM.name}", residential_files(MEDIUM))
    runs = [(medium["id"], client.create_run(medium["id"])["id"]) for _ in range(4)]
    for pipeline_id, run_id in runs[:2]:
        client.wait_for_state(pipeline_id, run_id, "RUNNING", 60)
        wait_until(
            lambda p=pipeline_id, r=run_id: client.logs(p, r)["lines"],
            30,
            f"run {run_id} to have log lines",
        )
    before = {run_id: (client.all_logs(p, run_id), client.get_run(p, run_id)) for p, run_id in runs}

    started = time.monotonic()
    stack.api.restart()
    print(f"\nAPI restart (SIGTERM, start, healthy) took {time.monotonic() - started:.1f} s")

    for pipeline_id, run_id in runs:
        run = client.wait_terminal(pipeline_id, run_id, 120)
        assert run["state"] == "COMPLETED", describe(run)
        logs = client.all_logs(pipeline_id, run_id)
        seqs = [line["seq"] for line in logs]
        assert seqs == list(range(1, len(seqs) + 1)), f"gap or duplicate in log of {run_id}"
        old_logs, old_run = before[run_id]
        kept = {(line["seq"], line["line"]) for line in logs}
        lost = [line for line in old_logs if (line["seq"], line["line"]) not in kept]
        assert not lost, f"log lines reported before the restart are gone: {lost[:5]}"
        names = {a["name"] for a in run["artifacts"]}
        assert {a["name"] for a in old_run["artifacts"]} <= names
        assert "medium_hourly.csv" in {n.rsplit("/", 1)[-1] for n in names}
        # The restart cost no attempt: each run ran once, from its first claim to its end.
        assert run["attempt"] == 1, describe(run)
        assert history(run) == ["READY", "RUNNING", "COMPLETED"], describe(run)


# --- cancel in every state ------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_cancel_in_every_state(client, stack):
    worker = only_one_worker(stack)
    long = client.pipeline_with_files(f"models/{LONG.name}", residential_files(LONG))
    ieee = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    # Fill both of the worker's slots with long simulations so the next run waits READY.
    busy = [client.create_run(long["id"]) for _ in range(2)]
    for run in busy:
        client.wait_for_state(long["id"], run["id"], "RUNNING", 60)
    waiting = client.create_run(ieee["id"])
    follower = client.create_run(ieee["id"])  # queued after `waiting`
    assert client.get_run(ieee["id"], waiting["id"])["state"] == "READY"

    # READY: ends at once, never starts.
    response = client.cancel(ieee["id"], waiting["id"])
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "CANCELLED"
    assert response.json()["error"]["type"] == "CANCELLED"

    # RUNNING: CANCELLING until the worker stops it. Freeze the worker so the run is
    # certainly still CANCELLING when the second cancel arrives (well inside the lease).
    target = busy[0]
    signal_group(worker.pid, signal.SIGSTOP)
    try:
        first = client.cancel(long["id"], target["id"])
        second = client.cancel(long["id"], target["id"])
    finally:
        signal_group(worker.pid, signal.SIGCONT)
    assert first.status_code == 200 and first.json()["state"] == "CANCELLING", first.text
    assert second.status_code == 200 and second.json()["state"] == "CANCELLING", second.text
    cancelled = client.wait_for_state(long["id"], target["id"], "CANCELLED", 20)
    assert history(cancelled) == ["READY", "RUNNING", "CANCELLING", "CANCELLED"]
    assert client.cancel(long["id"], busy[1]["id"]).status_code == 200
    client.wait_for_state(long["id"], busy[1]["id"], "CANCELLED", 20)

    # The slots are free: the follower runs; the cancelled READY run was passed over: its
    # message reached the worker, whose claim was refused.
    done = client.wait_for_state(ieee["id"], follower["id"], "COMPLETED", 60)
    wait_until(
        lambda: f"Run {waiting['id']} not claimable" in worker.log_text(),
        30,
        f"the worker to refuse the cancelled run {waiting['id']}",
        diagnostics=stack.diagnostics,
    )
    never = client.get_run(ieee["id"], waiting["id"])
    assert never["state"] == "CANCELLED" and never["attempt"] == 0, describe(never)
    assert history(never) == ["READY", "CANCELLED"] and never["started_at"] is None
    assert client.logs(ieee["id"], waiting["id"])["lines"] == []

    # Finished: 409, saying why.
    for pipeline_id, run in ((ieee["id"], done), (long["id"], cancelled)):
        response = client.cancel(pipeline_id, run["id"])
        assert response.status_code == 409, response.text
        message = response.json()["message"]
        assert run["state"] in message and "ended" in message, message
    assert client.get_run(ieee["id"], done["id"])["state"] == "COMPLETED"


# --- repeated requests ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_idempotency_key_on_create_run(api_client):
    pipeline = api_client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    body = {"parameters": {"note": "first"}}
    first = api_client.create_run_response(pipeline["id"], body, headers=key)
    assert first.status_code == 201, first.text
    again = api_client.create_run_response(pipeline["id"], body, headers=key)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    different = api_client.create_run_response(
        pipeline["id"], {"parameters": {"note": "second"}}, headers=key
    )
    assert different.status_code == 422, different.text
    assert "Idempotency-Key" in different.json()["message"]
    other_key = api_client.create_run_response(
        pipeline["id"], body, headers={"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    )
    assert other_key.status_code == 201 and other_key.json()["id"] != first.json()["id"]
    listed = api_client.get(api_client.run_path(pipeline["id"]), params={"limit": 50}).json()
    assert sorted(r["id"] for r in listed["items"]) == sorted(
        {first.json()["id"], other_key.json()["id"]}
    )


@pytest.mark.timeout(60)
def test_concurrent_repeats_of_one_idempotency_key_make_one_run(api_client):
    pipeline = api_client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: api_client.create_run_response(pipeline["id"], {}, headers=key),
                     range(8))
        )  # fmt: skip
    codes = [r.status_code for r in responses]
    # A repeat racing the first may be told to retry (409); never a second run, never a 500.
    assert set(codes) <= {201, 409}, [(r.status_code, r.text) for r in responses]
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1, ids
    listed = api_client.get(api_client.run_path(pipeline["id"])).json()["items"]
    assert [r["id"] for r in listed] == list(ids)


# --- many runs at once ----------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_many_runs_submitted_at_once_each_run_exactly_once(client, stack):
    stack.ensure_up()
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    errors: list[str] = []
    lock = threading.Lock()

    def submit(_: int) -> str | None:
        response = client.create_run_response(pipeline["id"])
        if response.status_code != 201:
            with lock:
                errors.append(f"{response.status_code} {response.text[:200]}")
            return None
        return response.json()["id"]

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        ids = [run_id for run_id in pool.map(submit, range(CONCURRENT_RUNS)) if run_id]
    submitted = time.monotonic() - started
    assert not errors, errors[:5]
    assert len(set(ids)) == CONCURRENT_RUNS

    def unfinished() -> list[str]:
        pending = []
        cursor = None
        seen = 0
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = client.get(client.run_path(pipeline["id"]), params=params).json()
            for run in page["items"]:
                seen += 1
                if run["state"] not in TERMINAL:
                    pending.append(run["id"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == CONCURRENT_RUNS
        return pending

    wait_until(
        lambda: not unfinished(),
        240,
        f"{CONCURRENT_RUNS} runs to end",
        interval=2,
        diagnostics=lambda: f"unfinished: {len(unfinished())}\n{stack.diagnostics()}",
    )
    finished = time.monotonic() - started
    runs = [client.get_run(pipeline["id"], run_id) for run_id in ids]
    bad = [describe(r) for r in runs if r["state"] != "COMPLETED"]
    twice = [describe(r) for r in runs if r["attempt"] != 1 or running_entries(r) != 1]
    print(
        f"\n{CONCURRENT_RUNS} IEEE-13 runs from {CLIENT_THREADS} threads: submitted in "
        f"{submitted:.1f} s, all ended {finished:.1f} s after the first submit "
        f"({CONCURRENT_RUNS / finished:.1f} runs/s with {len(stack.running_workers())} worker(s))"
    )
    stack.timings["many_runs_seconds"] = finished
    assert not bad, f"{len(bad)} runs did not complete:\n" + "\n".join(bad[:3])
    assert not twice, f"{len(twice)} runs ran more than once:\n" + "\n".join(twice[:3])
    for run in runs[:5]:
        assert artifact(run, "IEEE_13_NR_voltage.csv")["size"] > 0
    assert json.dumps(runs[0]["error"]) == "null"
