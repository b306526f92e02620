"""Flows end to end: gunicorn API, a data worker on its own queue in its own process,
sources on disk (SQLite, CSV) and in the S3 server (CSV), a DuckDB target. Results are
checked against Python; a cancel mid-query ends CANCELLED fast, a timeout mid-query ends
FAILED with TIMEOUT, and both leave the target as it was."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

from tests.e2e.harness import TERMINAL, wait_until
from tests.flows import data as flow_data

API = "/api/v1.0"
SLOW = "SELECT sum(a.range * b.range) AS s FROM range(3000000) a CROSS JOIN range(3000000) b"


def _csv_bytes(header: list[str], rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def flow_setup(e2e_stack) -> dict[str, Any]:
    stack = e2e_stack
    stack.ensure_infra()  # a fault test before may have left Redis or the API down
    stack.add_flow_worker()
    data = flow_data.make_data()
    flow_data.write_sqlite(data, stack.flows_data / "readings.sqlite")
    flow_data.write_tariffs(stack.flows_data / "tariffs")
    s3 = boto3.client("s3", endpoint_url=stack.s3_url, aws_access_key_id="e2e",
                      aws_secret_access_key="e2e-secret", region_name="us-east-1")  # fmt: skip
    s3.put_object(
        Bucket=stack.flows_bucket,
        Key="grid/meters.csv",
        Body=_csv_bytes(["id", "feeder_id", "customer_class"], data["meters"]),
    )
    s3.put_object(
        Bucket=stack.flows_bucket,
        Key="grid/feeders.csv",
        Body=_csv_bytes(["id", "name", "substation", "rated_kva"], data["feeders"]),
    )
    client = stack.client()
    stores = {}
    for key, body in {
        "sqlite": {"type": "RELATIONAL", "engine": "sqlite", "path": "readings.sqlite"},
        "csv": {"type": "FILE", "engine": "csv", "path": "tariffs"},
        "s3": {"type": "FILE", "engine": "csv", "path": f"s3://{stack.flows_bucket}/grid/"},
        "duck": {"type": "COLUMNAR", "engine": "duckdb", "path": "out/warehouse.duckdb"},
    }.items():  # fmt: skip
        response = client.post(f"{API}/data-stores", json={"name": key, **body})
        assert response.status_code == 201, response.text
        stores[key] = response.json()["id"]
    test = client.post(f"{API}/data-stores/{stores['s3']}/test")
    assert test.status_code == 200 and test.json()["tables"] == ["feeders.csv", "meters.csv"]
    return {"stack": stack, "client": client, "stores": stores, "data": data}


def _flow_input(
    setup: dict[str, Any],
    transforms: list[dict[str, Any]],
    checks: list,
    timeout_seconds: int | None = None,
) -> str:
    stores = setup["stores"]
    body = {
        "name": "feeder-energy",
        "sources": [
            {"store_id": stores["s3"], "files": [{"name": "meters", "pattern": "meters.csv"},
                                                 {"name": "feeders", "pattern": "feeders.csv"}]},
            {"store_id": stores["sqlite"], "tables": [{"table": "readings"}]},
            {"store_id": stores["csv"], "files": [{"name": "tariffs", "pattern": "tariffs_*.csv"}]},
        ],
        "target_store_id": stores["duck"],
        "transforms": transforms,
        "checks": checks,
        "timeout_seconds": timeout_seconds,
    }  # fmt: skip
    response = setup["client"].post(f"{API}/flow-inputs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _wait(client, run_id: str, predicate, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (lambda body: body if predicate(body) else None)(
            client.get(f"{API}/flows/{run_id}").json()
        ),
        timeout,
        f"flow {run_id}",
        interval=0.1,
    )


def _billing(stack) -> list[tuple] | None:
    """The published billing table; None before anything was published (a test run alone)."""
    warehouse = stack.flows_data / "out" / "warehouse.duckdb"
    if not warehouse.exists():
        return None
    with duckdb.connect(str(warehouse), read_only=True) as c:
        return c.execute("SELECT meter_id, amount FROM billing ORDER BY 1").fetchall()


def test_flow_runs_in_a_data_worker_and_publishes(flow_setup):
    client, stack = flow_setup["client"], flow_setup["stack"]
    flow_input_id = _flow_input(flow_setup, flow_data.TRANSFORMS, flow_data.CHECKS)
    response = client.post(
        f"{API}/flows", json={"flow_input_id": flow_input_id}, headers={"Idempotency-Key": "e2e-1"}
    )
    assert response.status_code == 201, response.text
    run = _wait(client, response.json()["id"], lambda b: b["state"] in TERMINAL)
    assert run["state"] == "COMPLETED", (run, stack.diagnostics())
    assert run["progress"]["percent"] == 100.0
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["ingest readings"]["rows"] == len(flow_data.make_data()["readings"])
    assert steps["ingest meters"]["rows"] == 30
    assert all(s["state"] == "COMPLETED" for s in run["steps"])
    assert [a["name"] for a in run["artifacts"]] == ["manifest.json"]
    logs = client.get(f"{API}/flows/{run['id']}/logs?after=0").json()
    lines = [line["line"] for line in logs["lines"]]
    assert any(line.startswith("transform billing: 30 rows in ") for line in lines), lines
    expected = flow_data.expected(flow_setup["data"])["billing"]
    billing = dict(_billing(stack))
    assert billing.keys() == expected.keys()
    for meter, amount in expected.items():
        assert billing[meter] == pytest.approx(amount, rel=1e-9)


def test_cancel_mid_query_is_fast_and_leaves_target_untouched(flow_setup):
    client, stack = flow_setup["client"], flow_setup["stack"]
    before = _billing(stack)
    zero = {**flow_data.TRANSFORMS[-1], "sql": "SELECT meter_id, 0.0 AS amount FROM meter_daily"}
    transforms = [*flow_data.TRANSFORMS[:-1], zero, {"name": "slow", "sql": SLOW, "persist": True}]
    flow_input_id = _flow_input(flow_setup, transforms, [])
    run_id = client.post(f"{API}/flows", json={"flow_input_id": flow_input_id}).json()["id"]
    _wait(
        client,
        run_id,
        lambda b: any(
            s["name"] == "transform slow" and s["state"] == "RUNNING" for s in b["steps"]
        ),
    )
    started = time.monotonic()
    assert client.post(f"{API}/flows/cancel/{run_id}").json()["state"] == "CANCELLING"
    run = _wait(client, run_id, lambda b: b["state"] in TERMINAL, timeout=20)
    seconds = time.monotonic() - started
    assert run["state"] == "CANCELLED", run
    assert seconds < 5, seconds
    stack.timings["flow_cancel_seconds"] = seconds
    assert _billing(stack) == before


@pytest.mark.timeout(120)
def test_a_timeout_stops_a_long_flow_and_leaves_target_untouched(flow_setup):
    """The flow input's timeout_seconds: the worker stops the engine mid-query and the run
    ends FAILED with the run machinery's TIMEOUT (not the sweeper's late one)."""
    client, stack = flow_setup["client"], flow_setup["stack"]
    before = _billing(stack)
    zero = {**flow_data.TRANSFORMS[-1], "sql": "SELECT meter_id, 0.0 AS amount FROM meter_daily"}
    transforms = [*flow_data.TRANSFORMS[:-1], zero, {"name": "slow", "sql": SLOW, "persist": True}]
    flow_input_id = _flow_input(flow_setup, transforms, [], timeout_seconds=4)
    run_id = client.post(f"{API}/flows", json={"flow_input_id": flow_input_id}).json()["id"]
    run = _wait(client, run_id, lambda b: b["state"] in TERMINAL, timeout=60)
    assert run["timeout_seconds"] == 4
    assert run["state"] == "FAILED", run
    assert run["error"] == {"type": "TIMEOUT", "message": "Stopped after its timeout of 4 s",
                            "details": {"timeout_seconds": 4}}, run  # fmt: skip
    steps = {s["name"]: s["state"] for s in run["steps"]}
    assert steps["transform billing"] == "COMPLETED", run["steps"]
    assert steps["transform slow"] == "CANCELLED" and steps["publish"] == "CANCELLED", steps
    assert [(a["name"], a["partial"]) for a in run["artifacts"]] == [("manifest.json", True)]
    started, ended = (
        datetime.fromisoformat(next(s["at"] for s in run["states"] if s["state"] == name))
        for name in ("RUNNING", "FAILED")
    )
    seconds = (ended - started).total_seconds()
    assert 4 <= seconds < 4 + 5, seconds  # the timeout, then the engine stops within moments
    print(f"\nflow timeout_seconds=4: RUNNING -> FAILED TIMEOUT after {seconds:.1f} s")
    assert _engine_processes(run_id) == []
    assert _billing(stack) == before


def _engine_processes(run_id: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "app.worker.flow_engine" in command and run_id in command:
                found.append(int(proc.name))
    return found


def test_worker_killed_mid_flow_fails_the_run_and_leaves_target_untouched(flow_setup):
    client, stack = flow_setup["client"], flow_setup["stack"]
    before = _billing(stack)
    transforms = [{**flow_data.TRANSFORMS[-1], "sql": "SELECT 1 AS meter_id, 0.0 AS amount"},
                  {"name": "slow", "sql": SLOW, "persist": True}]  # fmt: skip
    flow_input_id = _flow_input(flow_setup, [*flow_data.TRANSFORMS[:-1], *transforms], [])
    run_id = client.post(f"{API}/flows", json={"flow_input_id": flow_input_id}).json()["id"]
    _wait(
        client,
        run_id,
        lambda b: any(
            s["name"] == "transform slow" and s["state"] == "RUNNING" for s in b["steps"]
        ),
    )
    assert _engine_processes(run_id)
    for worker in [w for w in stack.workers if w.name.startswith("flowworker") and w.running()]:
        worker.kill()
    # The engine dies with its worker (no orphan query), and the sweeper ends the run.
    wait_until(lambda: not _engine_processes(run_id), 10, "the engine process to die")
    run = _wait(client, run_id, lambda b: b["state"] in TERMINAL, timeout=30)
    assert run["state"] == "FAILED" and run["error"]["type"] == "WORKER_LOST", run
    assert _billing(stack) == before
    stack.add_flow_worker()  # for whatever runs next
