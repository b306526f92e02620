"""One attempt of a run, whatever executes it: claim, job folder, lease, final report.

Both executors (GridLAB-D pipelines in tasks.py, Python job kinds in job_tasks.py) run
their work inside ``run_attempt``, so claiming with a delivery token, renewing the lease
from claim to report, abandoning a superseded attempt and reporting a worker failure
behave the same for every kind of run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.runs.states import ErrorType
from app.worker import jobdir
from app.worker.api_client import ApiError, NotClaimable, StaleAttempt, WorkerApi
from app.worker.lease import LeaseKeeper

log = logging.getLogger(__name__)

#: (api, lease, job folder, claim) -> (final state, error or None)
Execute = Callable[[WorkerApi, LeaseKeeper, jobdir.JobDir, dict[str, Any]], tuple[str, Any]]


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"


def run_attempt(settings: Settings, run_id: str, execute: Execute) -> None:
    """Claim the run, ``execute`` it, and report how it ended.

    The lease is renewed from the claim to the final report (LeaseKeeper), so downloads
    and uploads of any length are covered, not only the work itself.
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
            state, error = execute(api, lease, job, claim)
            api.finish(state, error)
        log.info("Run %s attempt %s ended %s", run_id, claim["attempt"], state)
    except StaleAttempt as exc:
        log.warning("Run %s attempt %s superseded: %s", run_id, claim["attempt"], exc)
    except Exception as exc:  # noqa: BLE001 - the task boundary: report, then log
        log.exception("Run %s attempt %s failed in the worker", run_id, claim["attempt"])
        report_failure(api, exc)
    finally:
        job.remove()


def report_failure(api: WorkerApi, exc: Exception) -> None:
    kind = ErrorType.INFRASTRUCTURE_ERROR
    message = f"Worker error: {type(exc).__name__}: {exc}"[:2000]
    try:
        api.finish("FAILED", {"type": kind.value, "message": message, "details": {}})
    except ApiError as report_error:  # the lease will expire and the sweeper recovers
        log.error("Run %s: could not report failure: %s", api.run_id, report_error)


def upload_outputs(api: WorkerApi, job: jobdir.JobDir, names: list[str], partial: bool) -> None:
    for name in names:
        with open(job.root / name, "rb") as stream:
            api.upload_artifact(name, stream, partial)
