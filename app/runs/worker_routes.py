"""Worker-only routes (PIPELINES_WORKER): claim, heartbeat, progress, logs, artifacts and
the end of an attempt. Workers never touch the database; every write they make comes
through here, names its attempt, and is checked against the state machine."""

from __future__ import annotations

from typing import Any, NoReturn

from flask import current_app

from app.auth.decorators import WorkerView
from app.blueprint import Blueprint
from app.errors import Conflict, ErrorCode, ValidationFailed
from app.extensions import db
from app.filenames import name_problem
from app.openapi import BINARY, ErrorSchema
from app.runs import dispatch, services
from app.runs.models import JobUnavailable, Run
from app.runs.schemas import (
    FINISH_EXAMPLE,
    ArtifactSchema,
    ArtifactUploadQuerySchema,
    AttemptSchema,
    ClaimResponseSchema,
    ClaimSchema,
    FinishSchema,
    LeaseStatusSchema,
    LogBatchResponseSchema,
    LogBatchSchema,
    ProgressReportSchema,
)
from app.runs.states import ErrorType, RunState
from app.storage.extension import store
from app.uploads import limited_body

blp = Blueprint(
    "run_worker",
    __name__,
    url_prefix="/api/v1.0/worker/runs",
    description="Worker-only (PIPELINES_WORKER): how workers report on the runs they execute.",
)


def _lease_seconds() -> int:
    return current_app.config["SETTINGS"].RUN_LEASE_SECONDS


def _lease_status(run: Run) -> dict[str, Any]:
    return {"state": run.state, "cancel_requested": run.state is RunState.CANCELLING}


def _stale(description: str = "This attempt no longer owns the run") -> Any:
    return blp.alt_response(409, schema=ErrorSchema, description=description)


def _refuse_unrunnable(run: Run, unavailable: JobUnavailable) -> NoReturn:
    """End the attempt just claimed with the reason its job cannot be built, then tell the
    worker the run is not for it (it stops there, as for a cancelled run)."""
    services.finish_attempt(db.session, run, run.attempt, RunState.FAILED, unavailable.error)
    db.session.commit()
    dispatch.follow_up(db.session, run.id)
    message = unavailable.error[1]
    raise Conflict(f"Run cannot start: {message}", {"job": [message]}, ErrorCode.RUN_NOT_CLAIMABLE)


# OpenAPI links: the calls a worker makes with what a claim returned.
_ATTEMPT = {"parameters": {"run_id": "$response.body#/run_id"}}
CLAIM_LINKS = {
    name: {"operationId": name, **_ATTEMPT, "requestBody": body}
    for name, body in (
        ("renewRunLease", {"attempt": "$response.body#/attempt"}),
        ("reportRunProgress", {"attempt": "$response.body#/attempt"}),
        (
            "appendRunLogs",
            {"attempt": "$response.body#/attempt", "first_seq": "$response.body#/next_log_seq"},
        ),
        ("finishRunAttempt", {"attempt": "$response.body#/attempt"}),
    )
} | {
    "uploadRunArtifact": {
        "operationId": "uploadRunArtifact",
        "parameters": {"run_id": "$response.body#/run_id", "attempt": "$response.body#/attempt"},
    }
}


@blp.route("/<run_id>/claim")
class Claim(WorkerView):
    @blp.arguments(
        ClaimSchema, example={"worker_id": "worker-1", "claim_token": "3f1c2b9e8d7a4c5b"}
    )
    @blp.response(200, ClaimResponseSchema)
    @_stale("Not claimable: cancelled, taken, backing off, or its job cannot be built")
    @blp.doc(operationId="claimRun", responses={200: {"links": CLAIM_LINKS}})
    def post(self, data: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Start a new attempt of a READY run and return what the worker needs to run it.

        Repeating a claim with the same ``claim_token`` returns the same attempt. A run
        whose job cannot be built (a data store password the key cannot decrypt) ends
        FAILED with the reason, and the claim is refused.
        """
        run = services.lock_run(db.session, run_id)
        services.claim(db.session, run, data["worker_id"], data["claim_token"], _lease_seconds())
        try:
            job = run.job_spec()
        except JobUnavailable as unavailable:
            _refuse_unrunnable(run, unavailable)
        response = {
            "run_id": run.id,
            "kind": run.kind,
            "attempt": run.attempt,
            "next_log_seq": run.next_log_seq,
            "timeout_seconds": run.timeout_seconds,
            "lease_seconds": _lease_seconds(),
            "job": job,
        }
        db.session.commit()
        return response


@blp.route("/<run_id>/heartbeat")
class Heartbeat(WorkerView):
    @blp.arguments(AttemptSchema)
    @blp.response(200, LeaseStatusSchema)
    @_stale()
    @blp.doc(operationId="renewRunLease")
    def post(self, data: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Renew the attempt's lease; the answer says whether to stop (CANCELLING)."""
        run = services.lock_run(db.session, run_id)
        services.renew_lease(run, data["attempt"], _lease_seconds())
        db.session.commit()
        return _lease_status(run)


@blp.route("/<run_id>/progress")
class Progress(WorkerView):
    @blp.arguments(ProgressReportSchema)
    @blp.response(200, LeaseStatusSchema)
    @_stale()
    @blp.doc(operationId="reportRunProgress")
    def post(self, data: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Report progress (also renews the lease)."""
        run = services.lock_run(db.session, run_id)
        services.record_progress(
            db.session,
            run,
            data["attempt"],
            data.get("percent"),
            data.get("message"),
            _lease_seconds(),
        )
        db.session.commit()
        return _lease_status(run)


@blp.route("/<run_id>/logs")
class Logs(WorkerView):
    @blp.arguments(LogBatchSchema)
    @blp.response(200, LogBatchResponseSchema)
    @_stale("A stale attempt, or a gap before first_seq")
    @blp.doc(operationId="appendRunLogs")
    def post(self, data: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Append console lines numbered from ``first_seq`` (resending is harmless)."""
        run = services.lock_run(db.session, run_id)
        next_seq = services.append_logs(
            db.session, run, data["attempt"], data["first_seq"], data["lines"]
        )
        db.session.commit()
        return {"next_seq": next_seq}


@blp.route("/<run_id>/artifacts/<filename:name>")
class ArtifactUpload(WorkerView):
    @blp.arguments(ArtifactUploadQuerySchema, location="query")
    @blp.response(201, ArtifactSchema)
    @_stale()
    @blp.alt_response(413, schema=ErrorSchema, description="Larger than MAX_ARTIFACT_UPLOAD_BYTES")
    @blp.doc(operationId="uploadRunArtifact", requestBody=BINARY)
    def put(self, args: dict[str, Any], run_id: str, name: str) -> Any:
        """Upload an output file, streamed; the store holds it before the row points at it."""
        problem = name_problem(name)
        if problem:
            raise ValidationFailed("Invalid artifact name", {"name": [f"File name {problem}"]})
        run = services.lock_run(db.session, run_id)
        services.check_attempt(run, args["attempt"])
        db.session.commit()  # do not hold the row lock while streaming
        key = f"runs/{run_id}/attempts/{args['attempt']}/{name}"
        body = limited_body(current_app.config["SETTINGS"].MAX_ARTIFACT_UPLOAD_BYTES)
        stored = store().put_stream(key, body)
        run = services.lock_run(db.session, run_id)
        artifact = services.add_artifact(
            db.session,
            run,
            args["attempt"],
            name=name,
            size=stored.size,
            sha256=stored.sha256,
            storage_key=key,
            partial=args["partial"],
        )
        db.session.commit()
        return artifact


@blp.route("/<run_id>/state")
class State(WorkerView):
    @blp.arguments(FinishSchema, example=FINISH_EXAMPLE)
    @blp.response(200, LeaseStatusSchema)
    @_stale()
    @blp.doc(operationId="finishRunAttempt")
    def post(self, data: dict[str, Any], run_id: str) -> dict[str, Any]:
        """End the attempt: COMPLETED, FAILED (with an error) or CANCELLED."""
        run = services.lock_run(db.session, run_id)
        error = data.get("error")
        reported = (ErrorType(error["type"]), error["message"], error["details"]) if error else None
        services.finish_attempt(db.session, run, data["attempt"], data["state"], reported)
        db.session.commit()
        status = _lease_status(run)
        dispatch.follow_up(db.session, run_id)  # e.g. start a workflow's next node now
        return status
