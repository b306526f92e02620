"""Celery tasks of the worker: execute a pipeline run; deliver an end-of-run callback."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import requests

from app.celery_config import TASK_DELIVER_CALLBACK, TASK_PIPELINE_RUN
from app.outbound import OutboundRefused, guarded_session, policy_for
from app.runs.states import ErrorType
from app.worker import jobdir
from app.worker.api_client import ApiError, NotClaimable, StaleAttempt, WorkerApi
from app.worker.celery_app import celery_app, settings
from app.worker.lease import LeaseKeeper
from app.worker.outcome import classify
from app.worker.supervisor import Supervisor

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"


Execute = Callable[[WorkerApi, LeaseKeeper, jobdir.JobDir, dict[str, Any]], tuple[str, Any]]


@celery_app.task(name=TASK_PIPELINE_RUN)
def run_pipeline(run_id: str) -> None:
    """Claim the pipeline run, simulate, and report how it ended."""
    run_claimed(run_id, execute)


def run_claimed(run_id: str, execute_attempt: Execute) -> None:
    """Claim the run, execute it with ``execute_attempt``, and report how it ended.

    Shared by every kind of run a worker executes. The lease is renewed from the claim to
    the final report (LeaseKeeper), so downloads and uploads of any length are covered.
    """
    api = WorkerApi(settings.WORKER_API_SERVER, settings.WORKER_API_TOKEN, run_id)
    try:
        # One token for this delivery: the HTTP client's retry of a claim whose answer was
        # lost gets the same attempt back.
        claim = api.claim(worker_id(), uuid.uuid4().hex)
    except NotClaimable as exc:
        log.info("Run %s not claimable (%s): nothing to do", run_id, exc)
        return
    log.info("Run %s attempt %s claimed", run_id, claim["attempt"])
    job = jobdir.create(settings, run_id, claim["attempt"])
    try:
        with LeaseKeeper(api, settings.WORKER_HEARTBEAT_SECONDS) as lease:
            state, error = execute_attempt(api, lease, job, claim)
            api.finish(state, error)
        log.info("Run %s attempt %s ended %s", run_id, claim["attempt"], state)
    except StaleAttempt as exc:
        log.warning("Run %s attempt %s superseded: %s", run_id, claim["attempt"], exc)
    except Exception as exc:  # noqa: BLE001 - the task boundary: report, then log
        log.exception("Run %s attempt %s failed in the worker", run_id, claim["attempt"])
        _report_failure(api, exc)
    finally:
        job.remove()


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
    partial = outcome.stopped_for is not None
    for name in job.outputs(before):
        with open(job.root / name, "rb") as stream:
            api.upload_artifact(name, stream, partial)
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


def _report_failure(api: WorkerApi, exc: Exception) -> None:
    kind = ErrorType.INFRASTRUCTURE_ERROR
    message = f"Worker error: {type(exc).__name__}: {exc}"[:2000]
    try:
        api.finish("FAILED", {"type": kind.value, "message": message, "details": {}})
    except ApiError as report_error:  # the lease will expire and the sweeper recovers
        log.error("Run %s: could not report failure: %s", api.run_id, report_error)


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
