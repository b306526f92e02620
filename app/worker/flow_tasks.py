"""The flow task: claim a flow run, execute it in a process of its own, report.

The flow runs in ``app.worker.flow_engine`` as a child process under the same Supervisor
as a simulation (logs streamed, lease kept, SIGINT on cancel or timeout, SIGKILL after
WORKER_CANCEL_GRACE_SECONDS), so a cancel always stops it. Its steps are sent to the API
as they change; its manifest becomes the run's ``manifest.json`` artifact.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from app.celery_config import TASK_FLOW_RUN
from app.flows.locations import checked_address
from app.worker import jobdir
from app.worker.api_client import ApiError, StaleAttempt, WorkerApi
from app.worker.attempt import run_attempt
from app.worker.celery_app import celery_app, settings
from app.worker.flow_engine import MANIFEST, SPEC_FILE
from app.worker.lease import LeaseKeeper
from app.worker.outcome import stopped
from app.worker.supervisor import Outcome, Supervisor


@celery_app.task(name=TASK_FLOW_RUN)
def run_flow(run_id: str) -> None:
    """Claim the flow run, execute it, and report how it ended."""
    run_attempt(settings, run_id, execute_flow)


class StepReporter:
    """Sends the engine's latest steps to the API when they change."""

    def __init__(self, api: WorkerApi):
        self.api, self.sent = api, None

    def __call__(self, outcome: Outcome) -> None:
        latest = next((m for m in reversed(outcome.markers) if m.get("event") == "steps"), None)
        if latest is None or latest["steps"] == self.sent:
            return
        try:
            self.api.flow_steps(latest["steps"])
            self.sent = latest["steps"]
        except StaleAttempt:
            raise
        except ApiError:  # sent again with the next change, or at the end
            pass


def pin_hosts(spec: dict[str, Any]) -> tuple[str, Any] | None:
    """Check each database server's host again here, as the worker resolves it, and pin
    the address that passed; a refusal ends the run before anything connects."""
    stores = [(s["store"], "SOURCE_ERROR") for s in spec["sources"]]
    for store, kind in [*stores, (spec["target"], "PUBLISH_ERROR")]:
        if not store.get("host"):
            continue
        problem, address = checked_address(settings, store["host"], store.get("port"))
        if problem:
            return "FAILED", {"type": kind, "message": f"Data store {store['id']}: {problem}",
                              "details": {"store_id": store["id"]}}  # fmt: skip
        store["address"] = address
    return None


def execute_flow(
    api: WorkerApi, lease: LeaseKeeper, job: jobdir.JobDir, claim: dict[str, Any]
) -> tuple[str, Any]:
    refused = pin_hosts(claim["job"])
    if refused:
        return refused
    spec_path = job.root / SPEC_FILE
    fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        json.dump(claim["job"], stream)
    reporter = StepReporter(api)
    supervisor = Supervisor(
        api, lease, settings, claim["next_log_seq"], claim["timeout_seconds"], on_tick=reporter
    )
    command = [
        sys.executable, "-m", "app.worker.flow_engine", "--job", str(job.root), "--run", api.run_id,
    ]  # fmt: skip
    outcome = supervisor.run(command, jobdir.scratch_env(job))
    spec_path.unlink(missing_ok=True)
    if outcome.abandoned:
        raise StaleAttempt("the run was taken from this attempt")
    reporter(outcome)
    manifest = job.root / MANIFEST
    if manifest.exists():
        with open(manifest, "rb") as stream:
            api.upload_artifact(MANIFEST, stream, outcome.stopped_for is not None)
    state, error = classify_flow(outcome, claim["timeout_seconds"])
    if state == "COMPLETED":
        api.progress(100.0, "flow finished")
    return state, error


def classify_flow(outcome: Outcome, timeout_seconds: float) -> tuple[str, Any]:
    """The run's end from what the engine reported (or how its process ended)."""
    if (report := stopped(outcome, timeout_seconds)) is not None:
        return report
    result = outcome.event("result")
    if result is None:
        return "FAILED", {
            "type": "CRASH",
            "message": f"The flow process ended abnormally (exit code {outcome.returncode})",
            "details": {"exit_code": outcome.returncode, "last_lines": outcome.tail[-10:]},
        }
    return result["state"], result.get("error")
