"""Reads of the workflows domain. ``get_*`` raise NotFound; a run is only found under its
own workflow's URL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.pagination import paginate
from app.runs.models import Run
from app.runs.states import FINAL_STATES, RunState
from app.workflows import dag
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


def has_unfinished_runs(session: Session, workflow_id: str) -> bool:
    unfinished = select(WorkflowRun.id).where(
        WorkflowRun.workflow_id == workflow_id, WorkflowRun.state.not_in(FINAL_STATES)
    )
    return session.scalar(unfinished.limit(1)) is not None


def node_view(session: Session, run: WorkflowRun) -> list[dict[str, Any]]:
    """Each node of the run with its instances, states, runs and times: one query."""
    rows = session.execute(
        select(WorkflowNodeRun, Run)
        .outerjoin(Run, Run.id == WorkflowNodeRun.pipeline_run_id)
        .where(WorkflowNodeRun.workflow_run_id == run.id)
        .order_by(WorkflowNodeRun.id)
    ).all()
    instances: dict[str, list[dict[str, Any]]] = {}
    for row, child in rows:
        instances.setdefault(row.node, []).append(_instance(row, child))
    view = []
    for node in run.dag:
        items = instances.get(node["name"], [])
        view.append(
            {
                "name": node["name"],
                "pipeline_id": node["pipeline_id"],
                "trigger": node.get("trigger", dag.ALL_SUCCESS),
                "upstream": dag.upstream(node),
                "state": _node_state([item["state"] for item in items]),
                "run_ids": [item["run_id"] for item in items if item["run_id"]],
                "instances": items,
            }
        )
    return view


def _instance(row: WorkflowNodeRun, child: Run | None) -> dict[str, Any]:
    state = child.state.value if child is not None else row.status.value
    return {
        "index": row.instance,
        "sweep": row.sweep_values,
        "state": state,
        "run_id": row.pipeline_run_id,
        "reused": row.reused,
        "progress": child.progress_percent if child is not None else None,
        "reason": row.reason,
        "error": child.error if child is not None else None,
        "started_at": child.started_at if child is not None else None,
        "finished_at": child.finished_at if child is not None else row.decided_at,
    }


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
