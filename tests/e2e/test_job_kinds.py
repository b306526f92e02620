"""Python job kinds for real: the API under gunicorn, separate Celery worker processes,
the example kinds' package installed as an entry point, each job in its own process."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import procs
from tests.e2e.conftest import IEEE13
from tests.e2e.harness import API, TERMINAL, Client, FileServer, describe, wait_until
from tests.e2e.stack import Stack

KINDS = f"{API}/job-kinds"
NOMINAL = 2401.7771  # IEEE-13's line-to-neutral voltage


def create(client: Client, kind: str, body: dict[str, Any], runs: list) -> dict[str, Any]:
    response = client.post(f"{KINDS}/{kind}/runs", json=body)
    assert response.status_code == 201, response.text
    run = response.json()
    runs.append((kind, run["id"]))
    return run


def get(client: Client, kind: str, run_id: str) -> dict[str, Any]:
    response = client.get(f"{KINDS}/{kind}/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait(client: Client, kind: str, run_id: str, states: tuple, timeout: float) -> dict:
    def reached() -> dict | None:
        run = get(client, kind, run_id)
        if run["state"] in TERMINAL and run["state"] not in states:
            raise AssertionError(f"ended {run['state']}, expected {states}:\n{describe(run)}")
        return run if run["state"] in states else None

    return wait_until(reached, timeout, f"job run {run_id} in {states}")


def log_text(client: Client, kind: str, run_id: str) -> str:
    body = client.get(f"{KINDS}/{kind}/runs/{run_id}/logs").json()
    return "\n".join(line["line"] for line in body["lines"])


def download(client: Client, run: dict[str, Any], name: str) -> bytes:
    item = next(a for a in run["artifacts"] if a["name"] == name)
    response = client.get(item["url"])  # follows the redirect to the store
    assert response.status_code == 200, response.text
    return response.content


@pytest.fixture
def job_runs(stack: Stack, client: Client) -> Any:
    """Runs the test made; any still unfinished is cancelled and must end."""
    runs: list[tuple[str, str]] = []
    yield runs
    for kind, run_id in runs:
        if get(client, kind, run_id)["state"] not in TERMINAL:
            client.post(f"{KINDS}/{kind}/runs/{run_id}/cancel")
            wait(client, kind, run_id, TERMINAL, 20)


def recorder_csv(rows: int) -> str:
    lines = ["# recorder output", "# timestamp,voltage_A,voltage_B"]
    for i in range(rows):
        b = 2401.7771 * (1.07 if 10 <= i < 15 else 1.0)  # 5 minutes above 1.05 pu
        lines.append(f"2000-01-01 {i // 60:02d}:{i % 60:02d}:00 EST,+2401.7+0.0j,{b:+.3f}+0.0j")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(180)  # includes starting the stack when this file runs alone
def test_example_kinds_run_on_a_worker(stack: Stack, client: Client, job_runs, tmp_path: Path):
    (tmp_path / "v.csv").write_text(recorder_csv(120))
    kinds = {k["name"]: k for k in client.get(KINDS).json()["items"]}
    wait_until(
        lambda: client.get(f"{KINDS}/csv_summary").json()["workers"] >= 1,
        20,
        "a worker to announce csv_summary",
    )
    assert kinds["voltage_report"]["parameters"]["required"] == ["nominal_voltage"]
    with FileServer(tmp_path) as files:
        inputs = [{"name": "v.csv", "url": f"{files.url}/v.csv"}]
        summary = create(client, "csv_summary", {"inputs": inputs}, job_runs)
        report = create(
            client,
            "voltage_report",
            {"inputs": inputs, "parameters": {"nominal_voltage": NOMINAL}},
            job_runs,
        )
        summary = wait(client, "csv_summary", summary["id"], ("COMPLETED",), 45)
        report = wait(client, "voltage_report", report["id"], ("COMPLETED",), 45)
    assert [a["name"] for a in summary["artifacts"]] == [
        "summary.csv",
        "summary.json",
        "summary.png",
    ]
    assert summary["progress"]["percent"] == 100.0
    stats = json.loads(download(client, summary, "summary.json"))
    assert stats["rows"] == 120
    assert stats["columns"]["voltage_B"]["max"] == pytest.approx(NOMINAL * 1.07, abs=0.01)
    assert download(client, summary, "summary.png")[:4] == b"\x89PNG"
    assert "Reading v.csv..." in log_text(client, "csv_summary", summary["id"])
    history = [s["state"] for s in summary["states"]]
    assert history == ["READY", "RUNNING", "COMPLETED"], describe(summary)

    result = json.loads(download(client, report, "voltage_report.json"))
    meter = result["meters"]["voltage_B"]
    assert (meter["above"], meter["below"], meter["seconds_outside"]) == (5, 0, 300.0)
    assert result["meters"]["voltage_A"]["outside"] == 0
    rows = list(
        csv.DictReader(io.StringIO(download(client, report, "voltage_report.csv").decode()))
    )
    assert {row["meter"] for row in rows} == {"voltage_A", "voltage_B"}


def job_processes(stack: Stack) -> list[int]:
    return [
        pid
        for worker in stack.running_workers()
        for pid in procs.descendants(worker.pid)
        if "app.worker.job_driver" in procs.cmdline(pid)
    ]


@pytest.mark.timeout(60)
def test_cancel_stops_a_job_that_never_checks(stack: Stack, client: Client, job_runs):
    run = create(client, "test_sleeper", {"parameters": {"seconds": 600}}, job_runs)
    wait(client, "test_sleeper", run["id"], ("RUNNING",), 20)
    pids = wait_until(lambda: job_processes(stack), 10, "the job's own process")
    wait_until(
        lambda: (get(client, "test_sleeper", run["id"]).get("progress") or {}).get("message"),
        10,
        "the job's status line",
    )
    assert get(client, "test_sleeper", run["id"])["progress"]["message"] == "sleeping"
    response = client.post(f"{KINDS}/test_sleeper/runs/{run['id']}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "CANCELLING"
    ended = wait(client, "test_sleeper", run["id"], ("CANCELLED",), 20)
    assert procs.alive(pids) == [], "the job process outlived its cancel"
    ticks = next(a for a in ended["artifacts"] if a["name"] == "ticks.txt")
    assert ticks["partial"] is True and ticks["size"] > 0


@pytest.mark.timeout(60)
def test_a_timeout_stops_a_job(stack: Stack, client: Client, job_runs):
    body = {"parameters": {"seconds": 600}, "timeout_seconds": 2}
    run = create(client, "test_sleeper", body, job_runs)
    ended = wait(client, "test_sleeper", run["id"], ("FAILED",), 30)
    assert ended["error"]["type"] == "TIMEOUT", describe(ended)
    assert ended["error"]["message"] == "Stopped after its timeout of 2 s"


@pytest.mark.timeout(60)
def test_job_error_is_the_message_and_an_exception_goes_to_the_log(
    stack: Stack, client: Client, job_runs
):
    error_run = create(client, "test_failer", {"parameters": {"mode": "job_error"}}, job_runs)
    crash_run = create(client, "test_failer", {"parameters": {"mode": "exception"}}, job_runs)
    error_run = wait(client, "test_failer", error_run["id"], ("FAILED",), 30)
    crash_run = wait(client, "test_failer", crash_run["id"], ("FAILED",), 30)
    assert error_run["error"]["type"] == "JOB_ERROR"
    assert error_run["error"]["message"] == "The feeder has no meters named in the study"
    assert "Traceback" not in log_text(client, "test_failer", error_run["id"])

    assert crash_run["error"]["type"] == "JOB_EXCEPTION"
    assert (
        crash_run["error"]["message"]
        == "The job raised KeyError; its traceback is in the run's log"
    )
    log = log_text(client, "test_failer", crash_run["id"])
    assert "Traceback (most recent call last)" in log and "secret_internal_key" in log
    assert "/work/" not in log and str(stack.root) not in log  # job folder shown relative


@pytest.mark.timeout(60)
def test_a_kind_no_worker_runs_waits_visibly(stack: Stack, client: Client, job_runs):
    # The workers are up and have announced their kinds: the run still waits, and says why.
    wait_until(lambda: client.get(f"{KINDS}/test_failer").json()["workers"] >= 1, 20, "workers")
    run = create(client, "test_nobody", {}, job_runs)
    assert run["state"] == "READY"
    assert "No worker runs job kind 'test_nobody'" in run["waiting_reason"]
    assert client.get(f"{KINDS}/test_nobody").json()["workers"] == 0
    # A run of an installed kind sent after it completes: the nobody run was not taken.
    other = create(client, "test_failer", {"parameters": {"mode": "job_error"}}, job_runs)
    wait(client, "test_failer", other["id"], ("FAILED",), 30)
    still = get(client, "test_nobody", run["id"])
    assert still["state"] == "READY" and still["attempt"] == 0, describe(still)
    assert "test_nobody" in still["waiting_reason"]
    # A worker that has the kind comes up: it consumes the kind's queue and runs it.
    worker = stack.add_worker(env={"WORKER_JOB_KINDS": "test_nobody"}, concurrency=1)
    try:
        done = wait(client, "test_nobody", run["id"], ("COMPLETED",), 30)
        assert done["waiting_reason"] is None
    finally:
        worker.stop()


@pytest.mark.timeout(90)
def test_workflow_gridlabd_node_then_python_summary(stack: Stack, client: Client):
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    voltages = {"node": "sim", "artifact": "IEEE_13_NR_voltage.csv"}
    nodes = [
        {"name": "sim", "pipeline_id": pipeline["id"]},
        {
            "name": "violations",
            "job_kind": "voltage_report",
            "parameters": {"nominal_voltage": NOMINAL},
            "inputs": [{"name": "voltages.csv", "from": voltages}],
        },
        {
            "name": "summary",
            "job_kind": "csv_summary",
            "inputs": [{"name": "voltages.csv", "from": voltages}],
        },
    ]
    response = client.post(f"{API}/workflows", json={"name": "study", "nodes": nodes})
    assert response.status_code == 201, response.text
    workflow = response.json()
    run = client.post(f"{API}/workflows/{workflow['id']}/runs", json={}).json()
    path = f"{API}/workflows/{workflow['id']}/runs/{run['id']}"
    ended = wait_until(
        lambda: (body := client.get(path).json())["state"] in TERMINAL and body,
        60,
        "the workflow run to end",
        diagnostics=stack.diagnostics,
    )
    assert ended["state"] == "COMPLETED", ended
    by_name = {node["name"]: node for node in ended["nodes"]}
    assert by_name["violations"]["job_kind"] == "voltage_report"
    report_run = get(client, "voltage_report", by_name["violations"]["run_ids"][0])
    report = json.loads(download(client, report_run, "voltage_report.json"))
    # IEEE-13 as modelled runs above 1.05 pu at its regulated buses.
    assert report["file"] == "voltages.csv" and len(report["meters"]) > 20
    assert report["meters_with_violations"] >= 1
    summary_run = get(client, "csv_summary", by_name["summary"]["run_ids"][0])
    stats = json.loads(download(client, summary_run, "summary.json"))
    assert "voltA_mag" in stats["columns"]
