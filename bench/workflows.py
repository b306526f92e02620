"""Measure workflows: hand-off latency, the cost of a wide DAG, and GET of a big run.

Usage (repository root; PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379):

    python3 -m pipenv run python bench/workflows.py [--chain 20] [--width 1000] [--write]

Production shape: gunicorn + PostgreSQL + Redis + one Celery worker process
(``--concurrency``, default 2), trivial model (bench/models/trivial.glm).

(a) Hand-off: a chain of ``--chain`` nodes; per hop, the time from one node's run ending
    (its ``finished_at``) to the next node's run being claimed by a worker (its
    ``started_at``: the attempt starts, files are fetched and the simulation process is
    spawned right after). p50 and p99 over the hops.
(b) Width: a DAG of ``--width`` nodes (one root, width-2 parallel nodes, one join) against
    the same number of runs submitted directly; ratio of the wall times, submit to done.
(c) GET of that workflow run (all its nodes and instances): p50 and p99 of 200 requests.

Both arms of (b) wait for the end the same way: a small list request every 0.2 s (the
workflow's runs, or the pipeline's READY and RUNNING runs, one item each). Until
2026-12-06 the direct arm paged through every COMPLETED run (up to 2 x 500 full runs,
~250 ms of API time a poll) and the workflow arm fetched the whole 1,000-node run (~40 ms):
the waiting itself loaded the API unequally, and more so the direct arm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.services import (  # noqa: E402
    BenchDatabase,
    free_port,
    replace_section,
    start_gunicorn,
    start_worker,
    stop_process,
)

MODEL = Path(__file__).resolve().parent / "models" / "trivial.glm"
API = "/api/v1.0"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


class Bench:
    def __init__(self, base: str, key: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, **kwargs) -> dict:  # type: ignore[no-untyped-def]
        response = self.session.post(f"{self.base}{API}{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> dict:
        response = self.session.get(f"{self.base}{API}{path}")
        response.raise_for_status()
        return response.json()

    def pipeline(self) -> str:
        pipeline = self.post("/pipelines", json={"name": "trivial", "model": MODEL.name})
        self.post(f"/pipelines/{pipeline['id']}/files?name={MODEL.name}", data=MODEL.read_bytes())
        return pipeline["id"]

    def wait_workflow(self, workflow_id: str, run_id: str, timeout: float = 3600) -> float:
        """Poll the workflow's run list (a summary, without nodes) until the run has ended;
        return when that was seen (time.perf_counter)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.get(f"/workflows/{workflow_id}/runs?limit=1")["items"]
            if items and items[0]["id"] == run_id and items[0]["state"] in TERMINAL:
                return time.perf_counter()
            time.sleep(0.2)
        raise TimeoutError(f"workflow run {run_id} did not end")

    def ended_workflow(self, workflow_id: str, run_id: str) -> dict:
        """Wait for the run to end, then fetch it whole (nodes and instances)."""
        self.wait_workflow(workflow_id, run_id)
        return self.get(f"/workflows/{workflow_id}/runs/{run_id}")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def hand_off(bench: Bench, pipeline_id: str, length: int) -> list[float]:
    nodes = [{"name": "n0", "pipeline_id": pipeline_id}]
    nodes += [
        {"name": f"n{i}", "pipeline_id": pipeline_id, "depends_on": [f"n{i - 1}"]}
        for i in range(1, length)
    ]
    workflow = bench.post("/workflows", json={"name": "chain", "nodes": nodes})
    run = bench.post(f"/workflows/{workflow['id']}/runs", json={})
    ended = bench.ended_workflow(workflow["id"], run["id"])
    assert ended["state"] == "COMPLETED", ended["error"]
    instances = [node["instances"][0] for node in ended["nodes"]]
    return [
        (_at(nxt["started_at"]) - _at(prev["finished_at"])).total_seconds()
        for prev, nxt in zip(instances, instances[1:], strict=False)
    ]


def width_workflow(bench: Bench, pipeline_id: str, width: int) -> tuple[float, str, str]:
    middle = [f"m{i}" for i in range(width - 2)]
    nodes = [{"name": "root", "pipeline_id": pipeline_id}]
    nodes += [{"name": name, "pipeline_id": pipeline_id, "depends_on": ["root"]} for name in middle]
    nodes.append({"name": "join", "pipeline_id": pipeline_id, "depends_on": middle})
    workflow = bench.post("/workflows", json={"name": "wide", "nodes": nodes})
    start = time.perf_counter()
    run = bench.post(f"/workflows/{workflow['id']}/runs", json={})
    seconds = bench.wait_workflow(workflow["id"], run["id"]) - start
    ended = bench.get(f"/workflows/{workflow['id']}/runs/{run['id']}")
    assert ended["state"] == "COMPLETED", ended["error"]
    return seconds, workflow["id"], run["id"]


def width_direct(bench: Bench, pipeline_id: str, width: int) -> float:
    start = time.perf_counter()
    runs = {bench.post(f"/pipelines/{pipeline_id}/runs", json={})["id"] for _ in range(width)}
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        # Nothing READY or RUNNING left: every run has ended (checked below, off the clock).
        if not any(
            bench.get(f"/pipelines/{pipeline_id}/runs?state={state}&limit=1")["items"]
            for state in ("READY", "RUNNING", "CANCELLING")
        ):
            seconds = time.perf_counter() - start
            if runs <= _completed(bench, pipeline_id):
                return seconds
        time.sleep(0.2)
    raise TimeoutError("the directly submitted runs did not all complete")


def _completed(bench: Bench, pipeline_id: str) -> set[str]:
    url = f"/pipelines/{pipeline_id}/runs?state=COMPLETED&limit=500"
    page = bench.get(url)
    done = {item["id"] for item in page["items"]}
    while page["next_cursor"]:
        page = bench.get(f"{url}&cursor={page['next_cursor']}")
        done |= {item["id"] for item in page["items"]}
    return done


def get_latency(bench: Bench, workflow_id: str, run_id: str, count: int = 200) -> list[float]:
    url = f"/workflows/{workflow_id}/runs/{run_id}"
    bench.get(url)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        bench.get(url)
        samples.append(time.perf_counter() - start)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chain", type=int, default=20)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    port = free_port()
    with BenchDatabase(SWEEPER_ENABLED="true") as database:
        env = database.env(
            WORKER_API_SERVER=f"http://127.0.0.1:{port}", WORKER_API_TOKEN=database.worker_key
        )
        api = start_gunicorn(env, port)
        worker = start_worker(env, args.concurrency)
        try:
            bench = Bench(f"http://127.0.0.1:{port}", database.client_key)
            pipeline_id = bench.pipeline()
            hops = hand_off(bench, pipeline_id, args.chain)
            direct = width_direct(bench, pipeline_id, args.width)
            wide, workflow_id, run_id = width_workflow(bench, pipeline_id, args.width)
            gets = get_latency(bench, workflow_id, run_id)
        finally:
            stop_process(worker)
            stop_process(api)
    ms = 1000
    lines = [
        f"(a) hand-off over {len(hops)} hops: p50 {statistics.median(hops) * ms:.0f} ms, "
        f"p99 {percentile(hops, 0.99) * ms:.0f} ms, max {max(hops) * ms:.0f} ms",
        f"(b) {args.width} trivial runs: directly {direct:.1f} s, as one workflow {wide:.1f} s,"
        f" ratio {wide / direct:.3f}",
        f"(c) GET of the {args.width}-node workflow run: p50 {statistics.median(gets) * ms:.1f}"
        f" ms, p99 {percentile(gets, 0.99) * ms:.1f} ms",
    ]
    print("\n".join(lines))
    if args.write:
        replace_section(
            "Workflows",
            "Command: `python3 -m pipenv run python bench/workflows.py --write` "
            f"(chain {args.chain}, width {args.width}, worker concurrency {args.concurrency}; "
            "gunicorn + PostgreSQL + Redis + one Celery worker, trivial model).\n\n"
            + "\n".join(f"- {line}" for line in lines)
            + "\n",
        )


if __name__ == "__main__":
    main()
