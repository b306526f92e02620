"""Measure cancel latency and the time from a worker's death to its run's final state,
with the DEFAULT settings (30 s lease, 5 s sweeps, 1 s heartbeats).

Usage (repository root; PostgreSQL on 127.0.0.1:5432, redis-server installed):

    python3 -m pipenv run python bench/recovery.py [--write]

Uses the end-to-end stack of the test suite (gunicorn + PostgreSQL, a private Redis, moto
S3 over HTTP, Celery worker processes) and a long residential simulation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.services import replace_section  # noqa: E402
from tests.e2e.conftest import LONG, residential_files  # noqa: E402
from tests.e2e.harness import FAST_RECOVERY  # noqa: E402
from tests.e2e.stack import Stack  # noqa: E402


class DefaultSettingsStack(Stack):
    """The test stack without the tests' shortened recovery settings."""

    def env(self) -> dict[str, str]:
        env = super().env()
        for name in FAST_RECOVERY:
            env.pop(name, None)
            os.environ.pop(name, None)
        return env


def cancel_latency(stack: Stack) -> float:
    stack.ensure_up()
    client = stack.client()
    pipeline = client.pipeline_with_files(f"models/{LONG.name}", residential_files(LONG))
    run = client.create_run(pipeline["id"])
    client.wait_for_state(pipeline["id"], run["id"], "RUNNING", 60)
    time.sleep(2)
    started = time.monotonic()
    client.cancel(pipeline["id"], run["id"])
    client.wait_for_state(pipeline["id"], run["id"], "CANCELLED", 30, interval=0.05)
    return time.monotonic() - started


def kill_to_final(stack: Stack) -> tuple[float, str]:
    stack.ensure_up()
    client = stack.client()
    pipeline = client.pipeline_with_files(
        f"models/{LONG.name}", residential_files(LONG), max_retries=0
    )
    run = client.create_run(pipeline["id"])
    client.wait_for_state(pipeline["id"], run["id"], "RUNNING", 60)
    time.sleep(2)
    killed = time.monotonic()
    for worker in stack.running_workers():
        worker.kill()
    final = client.wait_terminal(pipeline["id"], run["id"], 120)
    return time.monotonic() - killed, f"{final['state']} {final['error']['type']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    stack = DefaultSettingsStack(Path(tempfile.mkdtemp(prefix="bench-recovery-")))
    try:
        stack.start()
        cancels = [cancel_latency(stack) for _ in range(3)]
        lost, final = kill_to_final(stack)
    finally:
        stack.stop()
    report = (
        f"- cancel of a running simulation, request to CANCELLED: "
        f"{', '.join(f'{c:.2f}' for c in cancels)} s (target < 5 s)\n"
        f"- worker SIGKILLed mid-simulation (max_retries=0) to {final}: {lost:.1f} s "
        f"(target < 60 s; bound: RUN_LEASE_SECONDS 30 + SWEEP_INTERVAL_SECONDS 5)\n"
        f"- default settings; measured {time.strftime('%Y-%m-%d')} with "
        f"`python3 -m pipenv run python bench/recovery.py --write`\n"
    )
    print(report)
    if args.write:
        replace_section("Cancel latency and recovery from a lost worker", report)


if __name__ == "__main__":
    main()
