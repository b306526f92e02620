"""Measure the service's overhead per run: submit-to-COMPLETED minus the simulation alone.

Usage (repository root; PostgreSQL on 127.0.0.1:5432, redis-server installed):

    python3 -m pipenv run python bench/run_overhead.py [--runs 20] [--write]

Production shape: gunicorn + PostgreSQL + Redis broker + one Celery worker process, local
artifact store. For a trivial model (bench/models/trivial.glm), each run is submitted and
polled every 20 ms until COMPLETED, one at a time; the same simulation is also run directly
(the same sandboxed driver process, no service). Overhead = median(service) - median(direct).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.services import (  # noqa: E402
    ROOT,
    BenchDatabase,
    free_port,
    replace_section,
    start_gunicorn,
    start_worker,
    stop_process,
)

MODEL = Path(__file__).resolve().parent / "models" / "trivial.glm"


def direct_seconds() -> float:
    with tempfile.TemporaryDirectory() as job:
        (Path(job) / MODEL.name).write_bytes(MODEL.read_bytes())
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "app.worker.gridlabd_driver", "--root", job,
             "--model", MODEL.name],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - start


def service_seconds(base: str, headers: dict[str, str], pipeline_id: str) -> float:
    start = time.perf_counter()
    run = requests.post(
        f"{base}/api/v1.0/pipelines/{pipeline_id}/runs", json={}, headers=headers
    ).json()
    url = f"{base}/api/v1.0/pipelines/{pipeline_id}/runs/{run['id']}"
    while True:
        state = requests.get(url, headers=headers).json()["state"]
        if state in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    assert state == "COMPLETED", state
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    with BenchDatabase(SWEEP_INTERVAL_SECONDS="5") as database:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_gunicorn(database.env(), port)
        worker = start_worker(
            database.env(WORKER_API_SERVER=base, WORKER_API_TOKEN=database.worker_key),
            concurrency=1,
        )
        try:
            headers = {"Authorization": f"Bearer {database.client_key}"}
            pipeline = requests.post(
                f"{base}/api/v1.0/pipelines",
                json={"name": "trivial", "model": MODEL.name},
                headers=headers,
            ).json()
            requests.post(
                f"{base}/api/v1.0/pipelines/{pipeline['id']}/files?name={MODEL.name}",
                data=MODEL.read_bytes(),
                headers=headers,
            ).raise_for_status()
            service_seconds(base, headers, pipeline["id"])  # warm up worker and pools
            service = [service_seconds(base, headers, pipeline["id"]) for _ in range(args.runs)]
        finally:
            stop_process(worker)
            stop_process(server)
    direct = [direct_seconds() for _ in range(args.runs)]
    service_ms = statistics.median(service) * 1000
    direct_ms = statistics.median(direct) * 1000
    report = (
        f"- trivial model, {args.runs} runs one at a time: submit-to-COMPLETED median "
        f"{service_ms:.0f} ms; the same simulation run directly median {direct_ms:.0f} ms\n"
        f"- overhead per run: {service_ms - direct_ms:.0f} ms "
        f"(ratio service/direct {service_ms / direct_ms:.2f})\n"
        f"- measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores with "
        f"`python3 -m pipenv run python bench/run_overhead.py --write`\n"
    )
    print(report)
    if args.write:
        replace_section("Overhead per run", report)


if __name__ == "__main__":
    main()
