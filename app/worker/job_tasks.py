"""The executor of Python job kinds, beside the GridLAB-D one (tasks.py).

A worker runs the kinds it has installed (JOB_KINDS and entry points, narrowed by
WORKER_JOB_KINDS): it consumes each one's queue (added at start-up, whatever ``-Q``
says) and announces them to the API every WORKER_ANNOUNCE_SECONDS, so a run of a kind no
worker has stays READY with a reason instead of being taken and failed.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any

from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown

from app.celery_config import TASK_JOB_RUN
from app.jobkit.registry import LoadedKind, load_kinds, queue_for, select_kinds
from app.runs.states import ErrorType
from app.worker import jobdir
from app.worker.api_client import ApiError, StaleAttempt, WorkerApi
from app.worker.attempt import run_attempt, upload_outputs, worker_id
from app.worker.celery_app import celery_app, settings
from app.worker.lease import LeaseKeeper
from app.worker.outcome import error, stopped
from app.worker.supervisor import Outcome, Supervisor

log = logging.getLogger(__name__)
SPEC_FILE = "job-spec.json"  # in the scratch folder: never an artifact
_announcer_stop = threading.Event()


def installed_kinds() -> dict[str, LoadedKind]:
    return select_kinds(load_kinds(settings.JOB_KINDS), settings.WORKER_JOB_KINDS)


INSTALLED = installed_kinds()


@celery_app.task(name=TASK_JOB_RUN)
def run_job(run_id: str) -> None:
    """Execute a job run: one attempt of a Python job kind (app/worker/attempt)."""
    run_attempt(settings, run_id, execute)


def execute(
    api: WorkerApi, lease: LeaseKeeper, job: jobdir.JobDir, claim: dict[str, Any]
) -> tuple[str, Any]:
    """Fetch the inputs, run the kind in its own process, upload its outputs."""
    spec = claim["job"]
    loaded = INSTALLED.get(spec["kind"])
    if loaded is None:  # routing should prevent it; retried elsewhere by policy
        message = f"Job kind {spec['kind']!r} is not installed on worker {worker_id()}"
        return "FAILED", error(ErrorType.INFRASTRUCTURE_ERROR, message)
    try:
        jobdir.fetch_files(job, api, spec["files"])
        jobdir.fetch_inputs(job, settings, spec["inputs"])
    except jobdir.InputError as exc:
        return "FAILED", error(ErrorType.INPUT_ERROR, str(exc))
    inputs = [item["name"] for item in [*spec["files"], *spec["inputs"]]]
    spec_path = job.root / jobdir.SCRATCH / SPEC_FILE
    spec_path.write_text(json.dumps({"parameters": spec["parameters"], "inputs": inputs}))
    before = job.snapshot()
    supervisor = Supervisor(api, lease, settings, claim["next_log_seq"], claim["timeout_seconds"])
    command = [
        sys.executable, "-m", "app.worker.job_driver",
        "--root", str(job.root), "--kind", loaded.reference, "--spec", str(spec_path),
    ]  # fmt: skip
    outcome = supervisor.run(command, job_env(job))
    if outcome.abandoned:
        raise StaleAttempt("the run was taken from this attempt")
    finished = outcome.event("finished")
    interrupted = outcome.stopped_for is not None
    if finished and finished.get("outputs") and not interrupted:
        names = finished["outputs"]
    else:
        names = job.outputs(before)
    upload_outputs(api, job, names, partial=interrupted or finished is None)
    report = classify(outcome, claim["timeout_seconds"])
    if report[0] == "COMPLETED":
        api.progress(100.0, "finished")
    return report


def job_env(job: jobdir.JobDir) -> dict[str, str]:
    """The scratch environment, with plotting that needs no display."""
    scratch = str(job.root / jobdir.SCRATCH)
    return {**jobdir.scratch_env(job), "MPLBACKEND": "Agg", "MPLCONFIGDIR": scratch}


def classify(outcome: Outcome, timeout_seconds: float) -> tuple[str, dict[str, Any] | None]:
    """The run's end from what the job process did. A JobError's message is the user's;
    another exception is named by its type, its traceback being in the log."""
    if (report := stopped(outcome, timeout_seconds)) is not None:
        return report
    job_error = outcome.event("job_error")
    if job_error is not None:
        return "FAILED", error(ErrorType.JOB_ERROR, job_error.get("message", "")[:10000])
    exception = outcome.event("exception")
    if exception is not None:
        name = exception.get("type", "Exception")
        return "FAILED", error(
            ErrorType.JOB_EXCEPTION,
            f"The job raised {name}; its traceback is in the run's log",
            {"exception": name},
        )
    if outcome.event("finished") is None or outcome.returncode != 0:
        return "FAILED", error(
            ErrorType.CRASH,
            f"The job process ended abnormally (exit code {outcome.returncode})",
            {"exit_code": outcome.returncode, "last_lines": outcome.tail[-10:]},
        )
    return "COMPLETED", None


# --- which kinds this worker runs: its queues and its announcements ----------------------


def kind_queues() -> list[str]:
    return sorted(
        {
            queue_for(name, settings.CELERY_TASK_QUEUE, settings.JOB_KIND_QUEUES)
            for name in INSTALLED
        }
    )


@celeryd_after_setup.connect
def _consume_kind_queues(sender: str, instance: Any, **_: Any) -> None:
    for queue in kind_queues():
        instance.app.amqp.queues.select_add(queue)


_announcer: dict[str, Any] = {}


@worker_ready.connect
def _start_announcing(sender: Any = None, **_: Any) -> None:
    api = WorkerApi(settings.WORKER_API_SERVER, settings.WORKER_API_TOKEN, "", timeout=10)
    name = getattr(sender, "hostname", None) or worker_id()
    _announcer.update(api=api, name=name)

    def loop() -> None:
        while not _announcer_stop.is_set():
            try:
                api.announce_kinds(name, sorted(INSTALLED))
            except ApiError as exc:
                log.warning("Could not announce job kinds: %s", exc)
            _announcer_stop.wait(settings.WORKER_ANNOUNCE_SECONDS)

    threading.Thread(target=loop, name="job-kind-announcer", daemon=True).start()


@worker_shutdown.connect
def _stop_announcing(**_: Any) -> None:
    """Leaving: say so, so runs of its kinds show why they wait at once."""
    _announcer_stop.set()
    if _announcer:
        try:
            _announcer["api"].announce_kinds(_announcer["name"], [], once=True)
        except ApiError as exc:
            log.warning("Could not withdraw job kinds: %s", exc)
