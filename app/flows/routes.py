"""HTTP routes of the flows domain: data stores, flow inputs, flows (runs). Client routes
need PIPELINES_CLIENT; the steps report is for workers (PIPELINES_WORKER)."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from app.auth.decorators import ClientView, WorkerView
from app.blueprint import Blueprint
from app.extensions import db
from app.flows import queries, services
from app.flows.schemas import (
    DataStorePageSchema,
    DataStoreSchema,
    FlowCreateSchema,
    FlowInputPageSchema,
    FlowInputSchema,
    FlowRunPageSchema,
    FlowRunSchema,
    StepsReportSchema,
    StoreTestSchema,
)
from app.openapi import IDEMPOTENT, LOCATION, ErrorSchema
from app.pagination import PageArgsSchema
from app.runs import broker
from app.runs.client_routes import add_run_routes, cancel_run
from app.runs.idempotency import idempotent
from app.runs.schemas import RunStateQuerySchema

blp = Blueprint(
    "flows",
    __name__,
    url_prefix="/api/v1.0",
    description="Flows: data stores, flow inputs (graphs of SQL transforms) and flow runs.",
)

STORE_EXAMPLE = {"name": "tariffs", "type": "FILE", "engine": "csv", "path": "tariffs"}
FLOW_INPUT_EXAMPLE = {
    "name": "daily-energy",
    "sources": [{"store_id": "<store id>", "tables": [{"table": "public.meters"}]}],
    "target_store_id": "<store id>",
    "transforms": [{"name": "meter_count", "sql": "SELECT count(*) AS n FROM meters",
                    "persist": True}],
    "checks": [{"type": "row_count", "table": "meter_count", "min": 1}],
}  # fmt: skip
_STORE = {"store_id": "$response.body#/id"}
STORE_LINKS = {
    n: {"operationId": n, "parameters": _STORE}
    for n in ("getDataStore", "replaceDataStore", "deleteDataStore", "testDataStore")
}
FLOW_LINKS = {
    n: {"operationId": n, "parameters": {"run_id": "$response.body#/id"}}
    for n in ("getFlow", "cancelFlow", "listFlowLogs")
}


def _settings() -> Any:
    return current_app.config["SETTINGS"]


@blp.route("/data-stores")
class DataStores(ClientView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, DataStorePageSchema)
    @blp.doc(operationId="listDataStores")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List data stores, newest first (passwords are never shown)."""
        items, cursor = queries.list_stores(db.session, args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(DataStoreSchema, example=STORE_EXAMPLE)
    @blp.response(201, DataStoreSchema, headers=LOCATION)
    @blp.doc(operationId="createDataStore", responses={201: {"links": STORE_LINKS}})
    def post(self, data: dict[str, Any]) -> Any:
        """Register a data store; its password is encrypted at rest and never returned."""
        store = services.create_store(db.session, data, _settings())
        db.session.commit()
        return store, 201, {"Location": url_for(".DataStore", store_id=store.id)}


@blp.route("/data-stores/<store_id>")
class DataStore(ClientView):
    @blp.response(200, DataStoreSchema)
    @blp.doc(operationId="getDataStore")
    def get(self, store_id: str) -> Any:
        """Show a data store."""
        return queries.get_store(db.session, store_id)

    @blp.arguments(DataStoreSchema, example=STORE_EXAMPLE)
    @blp.response(200, DataStoreSchema)
    @blp.doc(operationId="replaceDataStore")
    def put(self, data: dict[str, Any], store_id: str) -> Any:
        """Replace a data store's description (no password given: the stored one is kept)."""
        store = queries.get_store(db.session, store_id)
        services.update_store(db.session, store, data, _settings())
        db.session.commit()
        return store

    @blp.response(204)
    @blp.alt_response(409, schema=ErrorSchema, description="A flow input uses it")
    @blp.doc(operationId="deleteDataStore")
    def delete(self, store_id: str) -> None:
        """Delete a data store no flow input uses."""
        services.delete_store(db.session, queries.get_store(db.session, store_id))
        db.session.commit()


@blp.route("/data-stores/<store_id>/test")
class DataStoreTest(ClientView):
    @blp.response(200, StoreTestSchema)
    @blp.doc(operationId="testDataStore")
    def post(self, store_id: str) -> Any:
        """Connect and list what the store can give (422 with the driver's reason if not)."""
        store = queries.get_store(db.session, store_id)
        db.session.commit()  # no transaction held while a remote server answers
        return {"ok": True, "tables": services.test_store(store, _settings())}


@blp.route("/flow-inputs")
class FlowInputs(ClientView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, FlowInputPageSchema)
    @blp.doc(operationId="listFlowInputs")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List flow inputs, newest first."""
        items, cursor = queries.list_flow_inputs(db.session, args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(FlowInputSchema, example=FLOW_INPUT_EXAMPLE)
    @blp.response(201, FlowInputSchema, headers=LOCATION)
    @blp.doc(operationId="createFlowInput")
    def post(self, data: dict[str, Any]) -> Any:
        """Create a flow input (immutable): its SQL is parsed, its graph derived and checked.

        Mistakes are 422 naming the transform and the line and column in its SQL, a table
        that is neither a source table nor a transform, a cycle (its path), an unknown store.
        """
        flow_input = services.create_flow_input(db.session, data, _settings())
        db.session.commit()
        location = url_for(".FlowInput", flow_input_id=flow_input.id)
        return flow_input, 201, {"Location": location}


@blp.route("/flow-inputs/<flow_input_id>")
class FlowInput(ClientView):
    @blp.response(200, FlowInputSchema)
    @blp.doc(operationId="getFlowInput")
    def get(self, flow_input_id: str) -> Any:
        """Show a flow input with its derived graph and run order."""
        return queries.get_flow_input(db.session, flow_input_id)


@blp.route("/flows")
class Flows(ClientView):
    @blp.arguments(RunStateQuerySchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, FlowRunPageSchema)
    @blp.doc(operationId="listFlows")
    def get(self, filters: dict[str, Any], page: dict[str, Any]) -> Any:
        """List flows (runs), newest first, optionally by state."""
        items, cursor = queries.list_runs(
            db.session, filters.get("state"), page["limit"], page.get("cursor")
        )
        return {"items": items, "next_cursor": cursor}

    @idempotent
    @blp.arguments(FlowCreateSchema, example={"flow_input_id": "<flow input id>"})
    @blp.response(201, FlowRunSchema, headers={**LOCATION, **IDEMPOTENT})
    @blp.alt_response(409, schema=ErrorSchema, description="Same Idempotency-Key in progress")
    @blp.doc(
        operationId="createFlow",
        parameters=["IdempotencyKey"],
        responses={201: {"links": FLOW_LINKS}},
    )
    def post(self, data: dict[str, Any]) -> Any:
        """Run a flow input. Send an Idempotency-Key header to make retries safe."""
        run = services.create_run(db.session, data)
        broker.commit_and_publish(db.session, run)
        return (
            queries.get_run(db.session, run.id),
            201,
            {"Location": url_for(".Flow", run_id=run.id)},
        )


@blp.route("/flows/<run_id>")
class Flow(ClientView):
    @blp.response(200, FlowRunSchema)
    @blp.doc(operationId="getFlow")
    def get(self, run_id: str) -> Any:
        """Show a flow: state, history, progress, error, steps (rows, seconds), artifacts."""
        return queries.get_run(db.session, run_id)


def _find_run(run_id: str) -> Any:
    return queries.get_run(db.session, run_id)


add_run_routes(blp, "/flows/<run_id>", _find_run, FlowRunSchema, ClientView.decorators, "Flow")


@blp.route("/flows/cancel/<run_id>")
class FlowCancelByPath(ClientView):
    @idempotent
    @blp.response(200, FlowRunSchema, headers=IDEMPOTENT)
    @blp.alt_response(
        409, schema=ErrorSchema, description="The run has ended, or the same key is in progress"
    )
    @blp.doc(operationId="cancelFlowByPath", parameters=["IdempotencyKey"])
    def post(self, run_id: str) -> Any:
        """Cancel a flow (the flows design's path; the same as ``/flows/{id}/cancel``)."""
        cancel_run(_find_run(run_id=run_id).id)
        return _find_run(run_id=run_id)


@blp.route("/worker/runs/<run_id>/flow-steps")
class FlowSteps(WorkerView):
    @blp.arguments(StepsReportSchema)
    @blp.response(204)
    @blp.alt_response(409, schema=ErrorSchema, description="This attempt no longer owns the run")
    @blp.doc(operationId="reportFlowSteps")
    def put(self, data: dict[str, Any], run_id: str) -> None:
        """Worker side: the flow's steps as they stand (state, rows, seconds)."""
        services.record_steps(db.session, run_id, data["attempt"], data["steps"])
        db.session.commit()


# The page shows flows (app/flows/page.py registers their kind).
from app.flows.page import register_page  # noqa: E402

register_page()
