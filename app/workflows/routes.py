"""HTTP routes of the workflows domain: parse with a schema, call a service or query,
dump with a schema. They need PIPELINES_CLIENT, like every client route."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from app.auth.decorators import ClientView
from app.blueprint import Blueprint
from app.extensions import db
from app.openapi import IDEMPOTENT, LOCATION, ErrorSchema
from app.pagination import PageArgsSchema
from app.runs import dispatch
from app.runs.client_routes import add_run_routes
from app.runs.idempotency import idempotent
from app.runs.schemas import RunStateQuerySchema
from app.workflows import queries, services
from app.workflows.models import WorkflowRun
from app.workflows.schemas import (
    WorkflowPageSchema,
    WorkflowRunCreateSchema,
    WorkflowRunPageSchema,
    WorkflowRunSchema,
    WorkflowSchema,
)

blp = Blueprint(
    "workflows",
    __name__,
    url_prefix="/api/v1.0/workflows",
    description="Workflows: DAGs of pipelines whose artifacts flow downstream, and their runs.",
)


def _settings() -> Any:
    return current_app.config["SETTINGS"]


def _run_with_nodes(workflow_id: str, run_id: str) -> WorkflowRun:
    return queries.with_nodes(db.session, queries.get_run(db.session, workflow_id, run_id))


@blp.route("")
class Workflows(ClientView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, WorkflowPageSchema)
    @blp.doc(operationId="listWorkflows")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List workflows, newest first."""
        items, cursor = queries.list_workflows(db.session, args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(WorkflowSchema)
    @blp.response(201, WorkflowSchema, headers=LOCATION)
    @blp.doc(operationId="createWorkflow")
    def post(self, data: dict[str, Any]) -> Any:
        """Create a workflow: the whole DAG, validated in one request."""
        workflow = services.create_workflow(db.session, data)
        db.session.commit()
        return workflow, 201, {"Location": url_for(".WorkflowDetail", workflow_id=workflow.id)}


@blp.route("/<workflow_id>")
class WorkflowDetail(ClientView):
    @blp.response(200, WorkflowSchema)
    @blp.doc(operationId="getWorkflow")
    def get(self, workflow_id: str) -> Any:
        """Show a workflow."""
        return queries.get_workflow(db.session, workflow_id)

    @blp.arguments(WorkflowSchema)
    @blp.response(200, WorkflowSchema)
    @blp.doc(operationId="replaceWorkflow")
    def put(self, data: dict[str, Any], workflow_id: str) -> Any:
        """Replace a workflow's definition (runs already started keep theirs)."""
        workflow = queries.get_workflow(db.session, workflow_id)
        services.update_workflow(db.session, workflow, data)
        db.session.commit()
        return workflow

    @blp.response(204)
    @blp.alt_response(
        409, schema=ErrorSchema, description="A run of it is unfinished, or a schedule starts it"
    )
    @blp.doc(operationId="deleteWorkflow")
    def delete(self, workflow_id: str) -> None:
        """Delete a workflow and its runs (409 while a run is unfinished)."""
        services.delete_workflow(db.session, queries.get_workflow(db.session, workflow_id))
        db.session.commit()


@blp.route("/<workflow_id>/runs")
class WorkflowRuns(ClientView):
    @blp.arguments(RunStateQuerySchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, WorkflowRunPageSchema)
    @blp.doc(operationId="listWorkflowRuns")
    def get(self, filters: dict[str, Any], page: dict[str, Any], workflow_id: str) -> Any:
        """List a workflow's runs, newest first, optionally by state."""
        items, cursor = queries.list_runs(
            db.session, workflow_id, filters.get("state"), page["limit"], page.get("cursor")
        )
        return {"items": items, "next_cursor": cursor}

    @idempotent
    @blp.arguments(WorkflowRunCreateSchema, required=False, example={})
    @blp.response(201, WorkflowRunSchema, headers={**LOCATION, **IDEMPOTENT})
    @blp.alt_response(409, schema=ErrorSchema, description="Same Idempotency-Key in progress")
    @blp.doc(operationId="createWorkflowRun", parameters=["IdempotencyKey"])
    def post(self, data: dict[str, Any], workflow_id: str) -> Any:
        """Run the workflow: its root nodes start at once."""
        workflow = queries.get_workflow(db.session, workflow_id)
        run = services.create_run(db.session, workflow, data, _settings())
        db.session.commit()
        dispatch.follow_up(db.session, run.id)
        location = url_for(".WorkflowRunDetail", workflow_id=workflow_id, run_id=run.id)
        return _run_with_nodes(workflow_id, run.id), 201, {"Location": location}


@blp.route("/<workflow_id>/runs/<run_id>")
class WorkflowRunDetail(ClientView):
    @blp.response(200, WorkflowRunSchema)
    @blp.doc(operationId="getWorkflowRun")
    def get(self, workflow_id: str, run_id: str) -> Any:
        """Show a run: state, history, progress, error, and every node's state and runs."""
        return _run_with_nodes(workflow_id, run_id)


@blp.route("/<workflow_id>/runs/<run_id>/retry")
class WorkflowRunRetry(ClientView):
    @idempotent
    @blp.response(201, WorkflowRunSchema, headers={**LOCATION, **IDEMPOTENT})
    @blp.alt_response(
        409, schema=ErrorSchema, description="The run is unfinished or completed, or same key"
    )
    @blp.doc(operationId="retryWorkflowRun", parameters=["IdempotencyKey"])
    def post(self, workflow_id: str, run_id: str) -> Any:
        """Retry from failure: a new run that keeps the completed nodes' runs and artifacts."""
        old = queries.get_run(db.session, workflow_id, run_id)
        run = services.retry_run(db.session, old, _settings())
        db.session.commit()
        dispatch.follow_up(db.session, run.id)
        location = url_for(".WorkflowRunDetail", workflow_id=workflow_id, run_id=run.id)
        return _run_with_nodes(workflow_id, run.id), 201, {"Location": location}


add_run_routes(
    blp,
    "/<workflow_id>/runs/<run_id>",
    _run_with_nodes,
    WorkflowRunSchema,
    ClientView.decorators,
    "WorkflowRun",
)


# The run page (app/page) shows this domain's runs: its kind registers itself here.
from app.workflows.page import register_page  # noqa: E402

register_page()
