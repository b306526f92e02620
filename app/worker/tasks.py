"""Celery tasks of the worker: execute a pipeline run; deliver an end-of-run callback."""

from __future__ import annotations

import logging
import sys
from typing import Any

import requests

from app.celery_config import TASK_DELIVER_CALLBACK, TASK_PIPELINE_RUN
from app.outbound import OutboundRefused, guarded_session, policy_for
from app.runs.states import ErrorType
from app.worker import jobdir
from app.worker.api_client import StaleAttempt, WorkerApi
from app.worker.attempt import run_attempt, upload_outputs
from app.worker.celery_app import celery_app, settings
from app.worker.lease import LeaseKeeper
from app.worker.outcome import classify
from app.worker.supervisor import Supervisor

log = logging.getLogger(__name__)


@celery_app.task(name=TASK_PIPELINE_RUN)
def run_pipeline(run_id: str) -> None:
    """Execute a pipeline run: one attempt of a GridLAB-D simulation (app/worker/attempt)."""
    run_attempt(settings, run_id, execute)


def execute(
    api: WorkerApi, lease: LeaseKeeper, job: jobdir.JobDir, claim: dict[str, Any]
) -> tuple[str, Any]:
    """Prepare the job folder, run the simulation, upload its outputs; return the end."""
    spec = claim["job"]
    try:
        jobdir.fetch_files(job, api, spec["files"])
        jobdir.fetch_inputs(job, settings, spec["inputs"])
    except jobdir.InputError as exc:
        return "FAILED", {"type": ErrorType.INPUT_ERROR.value, "message": str(exc), "details": {}}
    before = job.snapshot()
    supervisor = Supervisor(api, lease, settings, claim["next_log_seq"], claim["timeout_seconds"])
    outcome = supervisor.run(simulation_command(job, spec), jobdir.scratch_env(job))
    if outcome.abandoned:
        raise StaleAttempt("the run was taken from this attempt")
    unused = outcome.event("unused_parameters")
    if unused:
        api.unused_parameters(unused["names"])
    upload_outputs(api, job, job.outputs(before), partial=outcome.stopped_for is not None)
    state, error = classify(outcome, claim["timeout_seconds"])
    if state == "COMPLETED":
        api.progress(100.0, "simulation finished")
    return state, error


def simulation_command(job: jobdir.JobDir, spec: dict[str, Any]) -> list[str]:
    command = [
        sys.executable, "-m", "app.worker.gridlabd_driver",
        "--root", str(job.root), "--model", spec["model"],
    ]  # fmt: skip
    for name, value in sorted(spec["parameters"].items()):
        command += ["-D", f"{name}={value}"]
    if not settings.WORKER_SANDBOX:
        command.append("--no-sandbox")
    return command


@celery_app.task(
    name=TASK_DELIVER_CALLBACK,
    autoretry_for=(requests.RequestException,),
    retry_backoff=settings.CALLBACK_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=600,
    max_retries=8,
)
def deliver_callback(url: str, body: str, headers: dict[str, str]) -> None:
    """POST the signed end-of-run notice; retried with back-off on failure.

    The URL was checked when the run was created and is checked again on connecting
    (app/outbound.py); a refused address is logged and not retried.
    """
    session = guarded_session(policy_for(settings))
    try:
        response = session.post(
            url, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=10
        )
    except OutboundRefused as exc:
        log.error("Callback to %s not sent: %s", url, exc)
        return
    response.raise_for_status()
