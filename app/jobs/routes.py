"""HTTP routes of the jobs domain: job kinds and their runs, beside the pipelines' ones
(``/job-kinds/{kind}/runs/{run_id}`` mirrors ``/pipelines/{id}/runs/{run_id}``)."""

from __future__ import annotations

from typing import Any

from flask import current_app, send_file, url_for

from app.auth.decorators import ClientView, require_permission
from app.auth.models import Permission
from app.blueprint import Blueprint
from app.extensions import db
from app.jobs import kinds, queries, services
from app.jobs.schemas import (
    JobKindListSchema,
    JobKindSchema,
    JobRunCreateSchema,
    JobRunPageSchema,
    JobRunSchema,
    KindAnnouncementSchema,
)
from app.openapi import BINARY_BODY, IDEMPOTENT, LOCATION, OCTET_STREAM, ErrorSchema
from app.pagination import PageArgsSchema
from app.runs import broker
from app.runs.client_routes import add_run_routes
from app.runs.idempotency import idempotent
from app.runs.schemas import RunStateQuerySchema
from app.storage.extension import store

blp = Blueprint(
    "jobs",
    __name__,
    url_prefix="/api/v1.0/job-kinds",
    description="Python job kinds installed on the service, and their runs.",
)

# OpenAPI links: what a client (or a stateful fuzzer) can call next with an answer's names.
_RUN = {"kind": "$response.body#/job_kind", "run_id": "$response.body#/id"}
RUN_LINKS = {
    name: {"operationId": name, "parameters": _RUN}
    for name in ("getJobRun", "cancelJobRun", "listJobRunLogs")
}
KIND_LINKS = {
    name: {"operationId": name, "parameters": {"kind": "$response.body#/items/0/name"}}
    for name in ("getJobKind", "listJobRuns", "createJobRun")
}
# The kind in a path: an installed kind's name (the examples ship csv_summary).
KIND_PARAMETER = [
    {
        "in": "path",
        "name": "kind",
        "description": "A job kind's name (GET /job-kinds lists them)",
        "example": "csv_summary",
    }
]


def _announce_seconds() -> float:
    return current_app.config["SETTINGS"].WORKER_ANNOUNCE_SECONDS


def _describe(name: str, workers: dict[str, int]) -> dict[str, Any]:
    kind = kinds.get_kind(name)
    return {
        "name": kind.name,
        "title": kind.title or kind.name,
        "description": kind.description or (kind.__doc__ or "").strip(),
        "parameters": kinds.parameters_json_schema(kind),
        "timeout_seconds": kind.timeout_seconds,
        "max_retries": kind.max_retries,
        "queue": kinds.queue_of(kind.name),
        "workers": workers.get(kind.name, 0),
    }


def _shown(run: Any) -> Any:
    workers = queries.workers_by_kind(db.session, _announce_seconds())
    return queries.with_waiting_reason(run, workers, _announce_seconds())


@blp.route("")
class JobKinds(ClientView):
    @blp.response(200, JobKindListSchema)
    @blp.doc(operationId="listJobKinds", responses={200: {"links": KIND_LINKS}})
    def get(self) -> dict[str, Any]:
        """List the installed job kinds with their parameter schemas (JSON Schema)."""
        workers = queries.workers_by_kind(db.session, _announce_seconds())
        return {"items": [_describe(name, workers) for name in kinds.installed()]}


@blp.route("/<kind>", parameters=KIND_PARAMETER)
class JobKind(ClientView):
    @blp.response(200, JobKindSchema)
    @blp.doc(operationId="getJobKind")
    def get(self, kind: str) -> dict[str, Any]:
        """Show a job kind: its parameter schema, defaults, queue and how many workers run it."""
        return _describe(kind, queries.workers_by_kind(db.session, _announce_seconds()))


@blp.route("/<kind>/runs", parameters=KIND_PARAMETER)
class JobRuns(ClientView):
    @blp.arguments(RunStateQuerySchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, JobRunPageSchema)
    @blp.doc(operationId="listJobRuns")
    def get(self, filters: dict[str, Any], page: dict[str, Any], kind: str) -> Any:
        """List a kind's runs, newest first, optionally by state."""
        kinds.get_kind(kind)
        items, cursor = queries.list_runs(
            db.session, kind, filters.get("state"), page["limit"], page.get("cursor")
        )
        workers = queries.workers_by_kind(db.session, _announce_seconds())
        for run in items:
            queries.with_waiting_reason(run, workers, _announce_seconds())
        return {"items": items, "next_cursor": cursor}

    @idempotent
    @blp.arguments(JobRunCreateSchema, required=False, example={"parameters": {}})
    @blp.response(201, JobRunSchema, headers={**LOCATION, **IDEMPOTENT})
    @blp.alt_response(409, schema=ErrorSchema, description="Same Idempotency-Key in progress")
    @blp.doc(
        operationId="createJobRun",
        parameters=["IdempotencyKey"],
        responses={201: {"links": RUN_LINKS}},
    )
    def post(self, data: dict[str, Any], kind: str) -> Any:
        """Start a run of a job kind.

        `parameters` are checked against the kind's schema (422 naming each field). A run
        of a kind no worker runs stays READY, and `waiting_reason` says why.
        """
        settings = current_app.config["SETTINGS"]
        run = services.start_run(db.session, kind, data, settings, "json.parameters")
        broker.commit_and_publish(db.session, run)
        location = url_for(".JobRun", kind=kind, run_id=run.id)
        return _shown(queries.get_run(db.session, kind, run.id)), 201, {"Location": location}


@blp.route("/<kind>/runs/<run_id>", parameters=KIND_PARAMETER)
class JobRun(ClientView):
    @blp.response(200, JobRunSchema)
    @blp.doc(operationId="getJobRun")
    def get(self, kind: str, run_id: str) -> Any:
        """Show a run: state, history, status line and percent, error, artifacts."""
        return _shown(queries.get_run(db.session, kind, run_id))


def _find_run(kind: str, run_id: str) -> Any:
    return _shown(queries.get_run(db.session, kind, run_id))


add_run_routes(
    blp, "/<kind>/runs/<run_id>", _find_run, JobRunSchema, ClientView.decorators, "JobRun"
)


# --- worker side: which kinds a worker runs, and the inputs a claimed run needs ----------

worker_blp = Blueprint(
    "job_worker",
    __name__,
    url_prefix="/api/v1.0/worker",
    description="Worker-only (PIPELINES_WORKER): job kinds a worker runs, job run inputs.",
)


@worker_blp.route("/job-kinds", methods=["PUT"], endpoint="kinds")
@require_permission(Permission.PIPELINES_WORKER)
@worker_blp.arguments(KindAnnouncementSchema, example={"worker_id": "w1", "kinds": ["csv_summary"]})
@worker_blp.response(204)
@worker_blp.doc(operationId="announceJobKinds")
def worker_kinds(data: dict[str, Any]) -> None:
    """Say which job kinds this worker runs (repeated every WORKER_ANNOUNCE_SECONDS)."""
    services.record_worker_kinds(db.session, data["worker_id"], data["kinds"])
    db.session.commit()


@worker_blp.route("/runs/<run_id>/inputs/<filename:name>", endpoint="input")
@require_permission(Permission.PIPELINES_WORKER)
@worker_blp.response(200, BINARY_BODY, content_type=OCTET_STREAM, description="The file")
@worker_blp.doc(operationId="getJobRunInput")
def worker_input(run_id: str, name: str) -> Any:
    """Stream an input of job run ``run_id`` that it was given by reference (an upstream
    workflow node's artifact)."""
    return send_file(
        store().open(queries.get_input_key(db.session, run_id, name)),
        mimetype="application/octet-stream",
    )


# The page to follow runs shows job runs too (app/page names no domain; each registers).
from app.jobs.page import register_page  # noqa: E402

register_page()
