"""Real GridLAB-D pipelines through the whole service: gunicorn API, Redis, Celery worker,
PostgreSQL and S3 (moto). Each test submits through the public API and reads back what a
client would see."""

from __future__ import annotations

import csv
import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import (
    HVAC,
    IEEE13,
    LONG,
    MEDIUM,
    R1,
    WEATHER,
    residential_files,
)
from tests.e2e.harness import (
    E2E_MODELS,
    FileServer,
    artifact,
    describe,
    history,
    sha256_of,
    wait_until,
)

HVAC_CSVS = ("test_HVAC_common_cool.csv", "test_HVAC_common_cool_hourly.csv",
             "test_HVAC_common_cool_energy.csv")  # fmt: skip


def at(change: dict) -> datetime:
    return datetime.fromisoformat(change["at"].replace("Z", "+00:00"))


def running_interval(run: dict) -> tuple[datetime, datetime]:
    """When the run's (single) attempt started RUNNING and when it ended."""
    started = [at(c) for c in run["states"] if c["state"] == "RUNNING"]
    assert len(started) == 1, describe(run)
    return started[0], at(run["states"][-1])


def fetch_artifact(client, run: dict, name: str) -> bytes:
    """Download through the API's URL, following its redirect by hand; check the checksum."""
    item = artifact(run, name)
    response = client.download(item)
    if response.status_code == 302:
        response = requests.get(response.headers["Location"], timeout=30)
    assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:300]}"
    data = response.content
    assert len(data) == item["size"], (name, len(data), item)
    assert sha256_of(data) == item["sha256"], name
    return data


def csv_rows(data: bytes) -> list[list[str]]:
    lines = [line for line in data.decode().splitlines() if line and not line.startswith("#")]
    return list(csv.reader(lines))


def wait_running(client, pipeline_id: str, run_id: str, timeout: float = 60) -> dict:
    """RUNNING, and the simulation making progress (not only claimed)."""
    client.wait_for_state(pipeline_id, run_id, "RUNNING", timeout)
    return wait_until(
        lambda: _progressing(client.get_run(pipeline_id, run_id)),
        timeout,
        f"run {run_id} to report progress while RUNNING",
        interval=0.2,
    )


def _progressing(run: dict) -> dict | None:
    assert run["state"] == "RUNNING", describe(run)
    progress = run.get("progress")
    return run if progress and (progress.get("percent") or 0) > 0 else None


@pytest.mark.timeout(120)
def test_ieee13_end_to_end(client, stack):
    pipeline = client.pipeline_with_files("test_IEEE_13_NR.glm", [("test_IEEE_13_NR.glm", IEEE13)])
    response = client.create_run_response(pipeline["id"])
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] in ("READY", "RUNNING", "COMPLETED")
    location = response.headers["Location"]
    assert location.endswith(f"/api/v1.0/pipelines/{pipeline['id']}/runs/{created['id']}"), location
    assert client.get(location).json()["id"] == created["id"]

    run = client.wait_for_state(pipeline["id"], created["id"], "COMPLETED", 60)

    # States history with times, in order.
    assert history(run) == ["READY", "RUNNING", "COMPLETED"], describe(run)
    assert [c["from_state"] for c in run["states"]] == [None, "READY", "RUNNING"]
    times = [at(c) for c in run["states"]]
    assert times == sorted(times)
    assert run["attempt"] == 1 and run["error"] is None
    assert run["started_at"] and run["finished_at"]
    assert run["progress"] is not None and run["progress"]["percent"] is not None, describe(run)
    assert 0 < run["progress"]["percent"] <= 100

    # Logs: GridLAB-D's console, numbered from 1 without gaps, readable from a cursor.
    logs = client.logs(pipeline["id"], run["id"])
    lines = logs["lines"]
    text = [line["line"] for line in lines]
    # IEEE-13 prints these two warnings while it initializes (the pinned gridlabd has no KLU).
    assert any("phase N conductor should just be a normal conductor" in t for t in text), text
    assert any("solver_KLU could not be found" in t for t in text), text
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert logs["complete"] is True and logs["state"] == "COMPLETED"
    assert logs["next_after"] == lines[-1]["seq"]
    rest = client.logs(pipeline["id"], run["id"], after=1)["lines"]
    assert [(line["seq"], line["line"]) for line in rest] == [
        (line["seq"], line["line"]) for line in lines[1:]
    ]
    page = client.logs(pipeline["id"], run["id"], after=0, limit=1)
    assert [line["seq"] for line in page["lines"]] == [1] and page["next_after"] == 1
    end = client.logs(pipeline["id"], run["id"], after=lines[-1]["seq"])
    assert end["lines"] == [] and end["complete"] is True

    # Artifact: recorded with size and checksum, downloaded through a presigned S3 URL.
    item = artifact(run, "IEEE_13_NR_voltage.csv")
    assert item["size"] > 0 and re.fullmatch(r"[0-9a-f]{64}", item["sha256"]), item
    assert item["partial"] is False and item["attempt"] == 1
    redirect = client.download(item)
    assert redirect.status_code == 302, redirect.text
    presigned = redirect.headers["Location"]
    assert presigned.startswith(f"{stack.s3_url}/"), presigned
    assert "X-Amz-Signature=" in presigned and stack.bucket in presigned
    data = requests.get(presigned, timeout=30).content
    assert len(data) == item["size"] and sha256_of(data) == item["sha256"]
    rows = csv_rows(data)
    assert rows[0][:3] == ["node_name", "voltA_mag", "voltA_angle"], rows[0]
    nodes = {row[0]: [float(v) for v in row[1:]] for row in rows[1:]}
    assert {"n630", "n632", "n633", "n650", "l671"} <= set(nodes), sorted(nodes)
    assert 2000 < nodes["n633"][0] < 3000  # phase A voltage magnitude on a 4.16 kV feeder


@pytest.mark.timeout(120)
def test_r1_taxonomy_feeder(client):
    pipeline = client.pipeline_with_files(R1.name, [(R1.name, R1)])
    run = client.create_run(pipeline["id"])
    run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 90)
    rows = csv_rows(fetch_artifact(client, run, "R1-12.47-1_capacitor1.csv"))
    # A recorder every 60 s over 15 minutes: a sample per minute with the switch states.
    samples = [row for row in rows if re.match(r"\d{4}-\d\d-\d\d", row[0])]
    assert len(samples) >= 15, rows[:5]
    assert all(len(row) == 10 for row in samples), samples[0]


@pytest.mark.timeout(120)
def test_residential_hvac_with_weather_file(client, hvac_files):
    pipeline = client.pipeline_with_files("models/test_HVAC_common_cool.glm", hvac_files)
    run = client.create_run(pipeline["id"])
    run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 90)
    for name in HVAC_CSVS:
        rows = csv_rows(fetch_artifact(client, run, name))
        assert len(rows) > 20, (name, rows[:3])
    per_second = csv_rows(fetch_artifact(client, run, "test_HVAC_common_cool.csv"))
    assert len(per_second) > 80_000  # 24 h at 1 s


@pytest.mark.timeout(90)
def test_broken_model_fails_with_file_and_line(client):
    pipeline = client.pipeline_with_files("broken.glm", [("broken.glm", E2E_MODELS / "broken.glm")])
    run = client.create_run(pipeline["id"])
    run = client.wait_for_state(pipeline["id"], run["id"], "FAILED", 60)
    error = run["error"]
    assert error["type"] == "MODEL_ERROR", describe(run)
    details = error["details"]
    assert str(details.get("file", "")).endswith("broken.glm"), details
    assert details.get("line") == 11, details
    assert "expected ';'" in json.dumps(error), error
    assert run["attempt"] == 1  # a model error is not retried


@pytest.mark.timeout(90)
def test_input_url_that_404s_fails_input_error(client, tmp_path):
    (tmp_path / "present.csv").write_text("a,b\n1,2\n")
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    with FileServer(tmp_path) as server:
        url = f"{server.url}/missing.csv"
        run = client.create_run(pipeline["id"], {"inputs": [{"name": "data.csv", "url": url}]})
        run = client.wait_for_state(pipeline["id"], run["id"], "FAILED", 60)
        assert run["error"]["type"] == "INPUT_ERROR", describe(run)
        message = run["error"]["message"]
        assert message.startswith("Input 'data.csv' could not be fetched: "), message
        assert url in message and re.search(r"\b404\b", message), message
        assert ("/missing.csv", 404) in server.requests
        assert run["attempt"] == 1 and run["artifacts"] == []


@pytest.mark.timeout(120)
def test_http_input_is_placed_in_job_dir_and_used(client, tmp_path):
    """The weather file comes from an http input instead of an upload; the model finds it."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "yakima.tmy2").write_bytes(WEATHER.read_bytes())
    pipeline = client.pipeline_with_files(
        "models/test_HVAC_common_cool.glm", [("models/test_HVAC_common_cool.glm", HVAC)]
    )
    with FileServer(served) as server:
        inputs = [{"name": "WA-Yakima.tmy2", "url": f"{server.url}/yakima.tmy2"}]
        run = client.create_run(pipeline["id"], {"inputs": inputs})
        run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 90)
        assert ("/yakima.tmy2", 200) in server.requests
    assert run["inputs"] == inputs
    rows = csv_rows(fetch_artifact(client, run, "test_HVAC_common_cool_hourly.csv"))
    assert len(rows) > 20


@pytest.mark.timeout(120)
def test_runs_proceed_in_parallel(client):
    pipeline = client.pipeline_with_files(f"models/{MEDIUM.name}", residential_files(MEDIUM))
    runs = [client.create_run(pipeline["id"]) for _ in range(2)]
    done = [client.wait_for_state(pipeline["id"], r["id"], "COMPLETED", 90) for r in runs]
    (start_a, end_a), (start_b, end_b) = (running_interval(r) for r in done)
    overlap = (min(end_a, end_b) - max(start_a, start_b)).total_seconds()
    print(f"\nparallel runs: RUNNING intervals overlap by {overlap:.1f} s")
    assert overlap > 0, [describe(r) for r in done]


@pytest.mark.timeout(90)
def test_system_command_in_model_never_runs(client, tmp_path):
    """The model runs to the end without its #system line, and the log says so."""
    target = tmp_path / "system-was-run"
    model = (
        f"#system touch {target}\n"
        "clock {\n\ttimezone EST+5EDT;\n\tstarttime '2000-01-01 0:00:00';\n"
        "\tstoptime '2000-01-01 0:00:01';\n}\n"
        "module powerflow;\n"
        "object node {\n\tname n1;\n\tphases ABCN;\n\tnominal_voltage 120;\n}\n"
    ).encode()
    pipeline = client.pipeline_with_files("model.glm", [("model.glm", model)])
    run = client.create_run(pipeline["id"])
    run = client.wait_terminal(pipeline["id"], run["id"], 60)
    # GridLAB-D runs #system synchronously while loading, long before the run ends.
    assert not target.exists(), f"#system ran on the worker's machine: {describe(run)}"
    assert run["state"] == "COMPLETED" and run["error"] is None, describe(run)
    logs = [line["line"] for line in client.all_logs(pipeline["id"], run["id"])]
    refused = [line for line in logs if "model.glm(1): #system is disabled" in line]
    assert len(refused) == 1, logs
    assert "the command will not run" in refused[0], refused


@pytest.mark.timeout(120)
def test_cancel_running_simulation_stops_it_fast(client, stack):
    pipeline = client.pipeline_with_files(f"models/{LONG.name}", residential_files(LONG))
    run = client.create_run(pipeline["id"])
    wait_running(client, pipeline["id"], run["id"])
    started = time.monotonic()
    response = client.cancel(pipeline["id"], run["id"])
    assert response.status_code == 200, response.text
    assert response.json()["state"] in ("CANCELLING", "CANCELLED")
    run = client.wait_for_state(pipeline["id"], run["id"], "CANCELLED", 20, interval=0.05)
    latency = time.monotonic() - started
    print(f"\ncancel latency (request -> CANCELLED): {latency:.2f} s")
    assert latency < 5, f"cancel took {latency:.1f} s: {describe(run)}"
    assert history(run) == ["READY", "RUNNING", "CANCELLING", "CANCELLED"], describe(run)
    assert run["error"]["type"] == "CANCELLED"
    # What the simulation wrote before it stopped is kept, marked partial.
    assert run["artifacts"], describe(run)
    assert all(a["partial"] for a in run["artifacts"]), run["artifacts"]
    rows = csv_rows(fetch_artifact(client, run, "long_hourly.csv"))
    assert len(rows) >= 1
    # The simulation process is gone: no worker has a GridLAB-D child left.
    wait_until(lambda: not _simulations(stack), 10, "the cancelled simulation's process to exit")


def _simulations(stack) -> list[int]:
    from tests.e2e.procs import cmdline, descendants

    return [
        pid
        for worker in stack.running_workers()
        for pid in descendants(worker.pid)
        if "gridlabd" in cmdline(pid) or "glm" in cmdline(pid)
    ]


@pytest.mark.timeout(120)
def test_timeout_fails_long_simulation(client):
    pipeline = client.pipeline_with_files(f"models/{LONG.name}", residential_files(LONG))
    run = client.create_run(pipeline["id"], {"timeout_seconds": 3})
    assert run["timeout_seconds"] == 3
    run = client.wait_for_state(pipeline["id"], run["id"], "FAILED", 60)
    assert run["error"]["type"] == "TIMEOUT", describe(run)
    started, ended = running_interval(run) if history(run).count("RUNNING") == 1 else (None, None)
    assert started is not None, describe(run)
    took = (ended - started).total_seconds()
    print(f"\ntimeout_seconds=3: RUNNING -> FAILED TIMEOUT after {took:.1f} s")
    assert 3 <= took < 3 + 5 + 5, describe(run)  # timeout + grace + sweep slack
    assert all(a["partial"] for a in run["artifacts"]), run["artifacts"]


def test_models_are_where_the_suite_expects():
    """Guard: the shared models exist (the other tests would fail obscurely otherwise)."""
    for path in (IEEE13, R1, HVAC, WEATHER, LONG, MEDIUM):
        assert Path(path).is_file(), path
