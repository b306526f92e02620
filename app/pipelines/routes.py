"""HTTP routes of the pipelines domain: parse with a schema, call a service or query,
dump with a schema. Client routes need PIPELINES_CLIENT."""

from __future__ import annotations

from typing import Any

from flask import current_app, send_file, url_for

from app.auth.decorators import ClientView, require_permission
from app.auth.models import Permission
from app.blueprint import Blueprint
from app.extensions import db
from app.openapi import BINARY, BINARY_BODY, IDEMPOTENT, LOCATION, OCTET_STREAM, ErrorSchema
from app.pagination import PageArgsSchema
from app.pipelines import queries, services
from app.pipelines.schemas import (
    PIPELINE_EXAMPLE,
    FileNameQuerySchema,
    PipelineFilePageSchema,
    PipelineFileSchema,
    PipelinePageSchema,
    PipelineRunPageSchema,
    PipelineRunSchema,
    PipelineSchema,
    PipelineUpdateSchema,
    RunCreateSchema,
    UnusedParametersSchema,
)
from app.runs import broker
from app.runs.client_routes import add_run_routes
from app.runs.idempotency import idempotent
from app.runs.schemas import RunStateQuerySchema
from app.storage.extension import store
from app.uploads import limited_body

blp = Blueprint(
    "pipelines",
    __name__,
    url_prefix="/api/v1.0/pipelines",
    description="GridLAB-D pipelines (job definitions), their files and their runs.",
)


def _settings() -> Any:
    return current_app.config["SETTINGS"]


# OpenAPI links: what a client (or a stateful fuzzer) can call next with an answer's ids.
_PIPELINE = {"pipeline_id": "$response.body#/id"}
_RUN = {"pipeline_id": "$response.body#/pipeline_id", "run_id": "$response.body#/id"}
PIPELINE_LINKS = {
    name: {"operationId": name, "parameters": _PIPELINE}
    for name in (
        "getPipeline",
        "replacePipeline",
        "deletePipeline",
        "listPipelineFiles",
        "uploadPipelineFile",
        "createPipelineRun",
        "listPipelineRuns",
    )
}
RUN_LINKS = {
    **{
        name: {"operationId": name, "parameters": _RUN}
        for name in ("getPipelineRun", "cancelPipelineRun", "listPipelineRunLogs")
    },
    "claimRun": {"operationId": "claimRun", "parameters": {"run_id": "$response.body#/id"}},
}
NEXT_PAGE = {
    "operationId": "listPipelines",
    "parameters": {"cursor": "$response.body#/next_cursor"},
}


@blp.route("")
class Pipelines(ClientView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PipelinePageSchema)
    @blp.doc(operationId="listPipelines")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List pipelines, newest first."""
        items, cursor = queries.list_pipelines(db.session, args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(PipelineSchema, example=PIPELINE_EXAMPLE)
    @blp.response(201, PipelineSchema, headers=LOCATION)
    @blp.doc(operationId="createPipeline", responses={201: {"links": PIPELINE_LINKS}})
    def post(self, data: dict[str, Any]) -> Any:
        """Create a pipeline."""
        pipeline = services.create_pipeline(db.session, data, _settings())
        db.session.commit()
        return pipeline, 201, {"Location": url_for(".Pipeline", pipeline_id=pipeline.id)}


@blp.route("/<pipeline_id>")
class Pipeline(ClientView):
    @blp.response(200, PipelineSchema)
    @blp.doc(operationId="getPipeline")
    def get(self, pipeline_id: str) -> Any:
        """Show a pipeline."""
        return queries.get_pipeline(db.session, pipeline_id)

    @blp.arguments(PipelineUpdateSchema, example=PIPELINE_EXAMPLE)
    @blp.response(200, PipelineSchema)
    @blp.doc(operationId="replacePipeline")
    def put(self, data: dict[str, Any], pipeline_id: str) -> Any:
        """Replace a pipeline's definition (runs already created keep their settings)."""
        pipeline = queries.get_pipeline(db.session, pipeline_id)
        services.update_pipeline(db.session, pipeline, data, _settings())
        db.session.commit()
        return pipeline

    @blp.response(204)
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="A run of it is unfinished, or a workflow or schedule uses it",
    )
    @blp.doc(operationId="deletePipeline")
    def delete(self, pipeline_id: str) -> None:
        """Delete a pipeline, its files and its finished runs (409 while a run is unfinished)."""
        pipeline = services.lock_pipeline(db.session, pipeline_id, shared=False)
        prefixes = services.delete_pipeline(db.session, pipeline)
        db.session.commit()
        for prefix in prefixes:
            store().delete_prefix(prefix)


@blp.route("/<pipeline_id>/files")
class PipelineFiles(ClientView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PipelineFilePageSchema)
    @blp.doc(operationId="listPipelineFiles")
    def get(self, page: dict[str, Any], pipeline_id: str) -> dict[str, Any]:
        """List a pipeline's files, newest first."""
        items, cursor = queries.list_files(
            db.session, pipeline_id, page["limit"], page.get("cursor")
        )
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(FileNameQuerySchema, location="query")
    @blp.response(201, PipelineFileSchema, description="A new file")
    @blp.alt_response(200, schema=PipelineFileSchema, description="Replaced the file of that name")
    @blp.alt_response(413, schema=ErrorSchema, description="Larger than MAX_FILE_UPLOAD_BYTES")
    @blp.doc(operationId="uploadPipelineFile", requestBody=BINARY)
    def post(self, args: dict[str, Any], pipeline_id: str) -> Any:
        """Upload a model or support file; the body is the file, streamed. Same name replaces."""
        pipeline = queries.get_pipeline(db.session, pipeline_id)
        body = limited_body(_settings().MAX_FILE_UPLOAD_BYTES)
        record, created, old_key = services.store_file(
            db.session, store(), pipeline, args["name"], body
        )
        db.session.commit()
        if old_key:
            store().delete_prefix(old_key)
        return record, 201 if created else 200


@blp.route("/<pipeline_id>/runs")
class PipelineRuns(ClientView):
    @blp.arguments(RunStateQuerySchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PipelineRunPageSchema)
    @blp.doc(operationId="listPipelineRuns")
    def get(self, filters: dict[str, Any], page: dict[str, Any], pipeline_id: str) -> Any:
        """List a pipeline's runs, newest first, optionally by state."""
        items, cursor = queries.list_runs(
            db.session, pipeline_id, filters.get("state"), page["limit"], page.get("cursor")
        )
        return {"items": items, "next_cursor": cursor}

    @idempotent
    @blp.arguments(RunCreateSchema, required=False, example={})
    @blp.response(201, PipelineRunSchema, headers={**LOCATION, **IDEMPOTENT})
    @blp.alt_response(409, schema=ErrorSchema, description="Same Idempotency-Key in progress")
    @blp.doc(
        operationId="createPipelineRun",
        parameters=["IdempotencyKey"],
        responses={201: {"links": RUN_LINKS}},
    )
    def post(self, data: dict[str, Any], pipeline_id: str) -> Any:
        """Start a run.

        The body is optional (none, or `{}`, runs the pipeline as defined); it can override
        parameters and the timeout and add inputs. Send an Idempotency-Key header to make
        retries safe.
        """
        pipeline = services.lock_pipeline(db.session, pipeline_id, shared=True)
        services.check_model_uploaded(pipeline)
        run = services.create_run(db.session, pipeline, data)
        broker.commit_and_publish(db.session, run)
        location = url_for(".PipelineRun", pipeline_id=pipeline_id, run_id=run.id)
        return queries.get_run(db.session, pipeline_id, run.id), 201, {"Location": location}


@blp.route("/<pipeline_id>/runs/<run_id>")
class PipelineRun(ClientView):
    @blp.response(200, PipelineRunSchema)
    @blp.doc(operationId="getPipelineRun")
    def get(self, pipeline_id: str, run_id: str) -> Any:
        """Show a run: state, history, progress, error and artifacts."""
        return queries.get_run(db.session, pipeline_id, run_id)


def _find_run(pipeline_id: str, run_id: str) -> Any:
    return queries.get_run(db.session, pipeline_id, run_id)


add_run_routes(
    blp,
    "/<pipeline_id>/runs/<run_id>",
    _find_run,
    PipelineRunSchema,
    ClientView.decorators,
    "PipelineRun",
)


# --- worker side: the pipeline files a claimed run needs -------------------------------

worker_blp = Blueprint(
    "pipeline_worker",
    __name__,
    url_prefix="/api/v1.0/worker/runs",
    description="Worker-only (PIPELINES_WORKER): files of a pipeline run.",
)


@worker_blp.route("/<run_id>/files/<filename:name>", endpoint="file")
@require_permission(Permission.PIPELINES_WORKER)
@worker_blp.response(200, BINARY_BODY, content_type=OCTET_STREAM, description="The file")
@worker_blp.doc(operationId="getRunFile")
def worker_file(run_id: str, name: str) -> Any:
    """Stream one file of run ``run_id``: a file of its pipeline, or an artifact of another
    run that it was given by reference (a workflow's upstream node)."""
    key = queries.get_run_file_key(db.session, run_id, name)
    return send_file(store().open(key), mimetype="application/octet-stream")


@worker_blp.route("/<run_id>/unused-parameters", methods=["POST"], endpoint="unused_parameters")
@require_permission(Permission.PIPELINES_WORKER)
@worker_blp.arguments(UnusedParametersSchema)
@worker_blp.response(204)
@worker_blp.alt_response(409, schema=ErrorSchema, description="This attempt no longer owns the run")
@worker_blp.doc(operationId="reportUnusedParameters")
def worker_unused_parameters(data: dict[str, Any], run_id: str) -> None:
    """Record the parameters the run's model never reads (shown as ``unused_parameters``)."""
    services.record_unused_parameters(db.session, run_id, data["attempt"], data["names"])
    db.session.commit()


# The run page (app/page) shows this domain's runs: its kind registers itself here.
from app.pipelines.page import register_page  # noqa: E402

register_page()
