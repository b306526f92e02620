"""Reads of the workflows domain. ``get_*`` raise NotFound; a run is only found under its
own workflow's URL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.pagination import paginate
from app.runs.models import Run
from app.runs.states import RunState
from app.workflows.graphs import graph_of
from app.workflows.models import (
    NodeStatus,
    Workflow,
    WorkflowNodeRun,
    WorkflowPipeline,
    WorkflowRun,
)


def get_workflow(session: Session, workflow_id: str) -> Workflow:
    workflow = session.get(Workflow, workflow_id)
    if workflow is None:
        raise NotFound("Workflow not found", {"workflow_id": [f"No workflow {workflow_id}"]})
    return workflow


def list_workflows(
    session: Session, limit: int, cursor: str | None
) -> tuple[Sequence[Workflow], str | None]:
    return paginate(session, select(Workflow), Workflow.created_at, Workflow.id, limit, cursor)


def get_run(session: Session, workflow_id: str, run_id: str) -> WorkflowRun:
    run = session.scalar(
        select(WorkflowRun).where(WorkflowRun.id == run_id, WorkflowRun.workflow_id == workflow_id)
    )
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"Workflow {workflow_id} has no run {run_id}"]})
    return run


def list_runs(
    session: Session, workflow_id: str, state: RunState | None, limit: int, cursor: str | None
) -> tuple[Sequence[WorkflowRun], str | None]:
    get_workflow(session, workflow_id)
    query = select(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id)
    if state is not None:
        query = query.where(WorkflowRun.state == state)
    return paginate(session, query, WorkflowRun.created_at, WorkflowRun.id, limit, cursor)


def workflows_using(session: Session, pipeline_id: str) -> Sequence[Workflow]:
    return session.scalars(
        select(Workflow)
        .join(WorkflowPipeline, WorkflowPipeline.workflow_id == Workflow.id)
        .where(WorkflowPipeline.pipeline_id == pipeline_id)
        .order_by(Workflow.name)
    ).all()


# States as the stored strings: they go straight into the response, and turning 1,000
# rows' values into enums only to take their ``.value`` again was a third of the time.
_VIEW_COLUMNS = (
    WorkflowNodeRun.node,
    WorkflowNodeRun.instance,
    WorkflowNodeRun.sweep_values,
    type_coerce(WorkflowNodeRun.status, String).label("status"),
    WorkflowNodeRun.pipeline_run_id,
    WorkflowNodeRun.reused,
    WorkflowNodeRun.reason,
    WorkflowNodeRun.decided_at,
    type_coerce(Run.state, String).label("state"),
    Run.progress_percent,
    type_coerce(Run.error_type, String).label("error_type"),
    Run.error_message,
    Run.error_details,
    Run.started_at,
    Run.finished_at,
)


def node_view(session: Session, run: WorkflowRun) -> list[dict[str, Any]]:
    """Each node of the run with its instances, states, runs and times, JSON-ready.

    One query of plain columns, built straight into the response's shape (documented by
    NodeStateSchema): a 1,000-node run must answer in well under 100 ms, and ORM objects
    plus a marshmallow dump of every instance took 150 ms.
    """
    rows = session.execute(
        select(*_VIEW_COLUMNS)
        .outerjoin(Run, Run.id == WorkflowNodeRun.pipeline_run_id)
        .where(WorkflowNodeRun.workflow_run_id == run.id)
        .order_by(WorkflowNodeRun.id)
    ).all()
    instances: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        instances.setdefault(row.node, []).append(_instance(row))
    view = []
    for node in graph_of(run).outline:
        items = instances.get(node["name"], [])
        view.append(
            {
                **node,
                "state": _node_state([item["state"] for item in items]),
                "run_ids": [item["run_id"] for item in items if item["run_id"]],
                "instances": items,
            }
        )
    return view


def with_nodes(session: Session, run: WorkflowRun) -> WorkflowRun:
    """Attach the node view and the live progress: node runs ended over node runs, with
    the running ones' own percent folded in."""
    run.nodes = node_view(session, run)
    instances = [item for node in run.nodes for item in node["instances"]]
    ended = sum(1 for item in instances if item["state"] in _ENDED)
    running = sum(
        (item["progress"] or 0.0) / 100
        for item in instances
        if item["state"] not in _ENDED and item["progress"] is not None
    )
    percent = 100.0 * (ended + running) / len(instances) if instances else 100.0
    running_count = sum(1 for item in instances if item["state"] in ("RUNNING", "CANCELLING"))
    run.live_progress = {
        "percent": round(percent, 2),
        "message": f"{ended} of {len(instances)} node runs ended, {running_count} running",
        "updated_at": run.progress_updated_at or run.created_at,
    }
    return run


_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "SKIPPED"}


def _instance(row: Any) -> dict[str, Any]:
    has_run = row.state is not None
    error = None
    if row.error_type is not None:
        error = {
            "type": row.error_type,
            "message": row.error_message or "",
            "details": row.error_details or {},
        }
    finished = row.finished_at if has_run else row.decided_at
    return {
        "index": row.instance,
        "sweep": row.sweep_values,
        "state": row.state if has_run else row.status,
        "run_id": row.pipeline_run_id,
        "reused": row.reused,
        "progress": row.progress_percent,
        "reason": row.reason,
        "error": error,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(finished),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_LIVE = {"READY", "RUNNING", "CANCELLING", NodeStatus.STARTED.value}


def _node_state(states: list[str]) -> str:
    """One state for a node from its instances' (the worst that is still telling)."""
    if not states:
        return NodeStatus.WAITING.value
    for candidate in ("RUNNING", "CANCELLING", "READY"):
        if candidate in states:
            return candidate
    if NodeStatus.WAITING.value in states:
        return NodeStatus.WAITING.value
    for candidate in ("FAILED", "CANCELLED", "SKIPPED"):
        if candidate in states:
            return candidate
    return "COMPLETED"
