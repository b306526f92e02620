"""Writes of the workflows domain. Functions take the session, flush, never commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from blinker import Namespace
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import Conflict, ErrorCode, ValidationFailed
from app.jobs import kinds as job_kinds
from app.pipelines.models import Pipeline
from app.pipelines.services import pipeline_deleting
from app.runs.services import add_new, delete_runs
from app.runs.states import RunState
from app.timeutil import utcnow
from app.workflows import advance, dag, queries
from app.workflows.models import (
    NodeStatus,
    Workflow,
    WorkflowNodeRun,
    WorkflowPipeline,
    WorkflowRun,
)

_signals = Namespace()
#: Sent (with ``session``) before a workflow is deleted; a domain that uses workflows
#: (schedules) refuses the delete by raising a DomainError. Workflows never import it.
workflow_deleting = _signals.signal("workflow-deleting")


def _validate(session: Session, nodes: list[dict[str, Any]]) -> None:
    ids = {node["pipeline_id"] for node in nodes if "pipeline_id" in node}
    known = set(session.scalars(select(Pipeline.id).where(Pipeline.id.in_(ids))))
    installed = job_kinds.installed()
    errors = dag.problems(nodes, known, set(installed))
    if not errors:
        errors = _job_parameter_problems(nodes, installed)
    if errors:
        first = _first_message(errors)
        raise ValidationFailed(f"Invalid workflow: {first}", errors)


def _job_parameter_problems(nodes: list[dict[str, Any]], installed: dict) -> dict[str, Any]:
    """A job node's parameters (and each sweep value) checked by its kind's schema."""
    errors: dict[str, Any] = {}
    for index, node in enumerate(nodes):
        if "job_kind" not in node:
            continue
        schema = installed[node["job_kind"]].kind.Parameters()
        for values in dag.sweep_instances(node):
            found = schema.validate({**node.get("parameters", {}), **values})
            if found:
                errors[str(index)] = {"parameters": found}
                break
    return {"nodes": errors} if errors else {}


def _first_message(errors: dict[str, Any]) -> str:
    value: Any = errors
    while isinstance(value, dict):
        value = next(iter(value.values()))
    return value[0] if isinstance(value, list) else str(value)


def create_workflow(session: Session, data: dict[str, Any]) -> Workflow:
    _validate(session, data["nodes"])
    workflow = Workflow(**data)
    session.add(workflow)
    _record_uses(workflow)
    session.flush()
    return workflow


def update_workflow(session: Session, workflow: Workflow, data: dict[str, Any]) -> Workflow:
    """Replace the definition; runs already started keep the DAG they started with."""
    _validate(session, data["nodes"])
    for field, value in data.items():
        setattr(workflow, field, value)
    _record_uses(workflow)
    session.flush()
    return workflow


def _record_uses(workflow: Workflow) -> None:
    ids = sorted({node["pipeline_id"] for node in workflow.nodes if "pipeline_id" in node})
    workflow.uses = [WorkflowPipeline(pipeline_id=pipeline_id) for pipeline_id in ids]


def delete_workflow(session: Session, workflow: Workflow) -> None:
    """Delete a workflow and its runs (409 while one is unfinished). Its node runs stay
    with their pipelines (a workflow run has no stored artifacts of its own)."""
    workflow_deleting.send(workflow, session=session)
    delete_runs(
        session,
        select(WorkflowRun.id).where(WorkflowRun.workflow_id == workflow.id),
        "Workflow",
        "workflow_id",
    )
    session.delete(workflow)
    session.flush()


@pipeline_deleting.connect
def _refuse_pipeline_delete(pipeline: Pipeline, session: Session, **_: Any) -> None:
    """A pipeline that a workflow uses cannot be deleted: name the workflows."""
    users = queries.workflows_using(session, pipeline.id)
    if users:
        names = ", ".join(f"{w.name} ({w.id})" for w in users)
        raise Conflict(
            f"Pipeline is used by workflow(s) {names}; change or delete them first",
            {"pipeline_id": [f"Used by {names}"]},
            ErrorCode.PIPELINE_IN_USE,
        )


def unknown_nodes(workflow: Workflow, data: dict[str, Any]) -> dict[str, Any]:
    """Per field of a run body, the node names it gives that the workflow lacks."""
    names = {node["name"] for node in workflow.nodes}
    errors = {
        field: {name: ["No such node"] for name in data.get(field, {}) if name not in names}
        for field in ("parameters", "inputs")
    }
    return {field: value for field, value in errors.items() if value}


def create_run(
    session: Session, workflow: Workflow, data: dict[str, Any], settings: Settings
) -> WorkflowRun:
    """Start a run of the workflow as defined now; its root nodes start at once."""
    errors = unknown_nodes(workflow, data)
    if errors:
        raise ValidationFailed("Parameters or inputs name nodes the workflow lacks", errors)
    run = WorkflowRun(
        workflow_id=workflow.id,
        dag=workflow.nodes,
        fail_fast=workflow.fail_fast,
        node_parameters=data["parameters"],
        node_inputs=data["inputs"],
        callback_url=data.get("callback_url"),
        timeout_seconds=data.get("timeout_seconds") or settings.MAX_TIMEOUT_SECONDS,
        max_retries=0,
    )
    add_new(session, run)  # with its first history row
    session.flush()
    _add_instances(session, run)
    _begin(session, run)
    return run


def retry_run(session: Session, old: WorkflowRun, settings: Settings) -> WorkflowRun:
    """A new run of the same DAG that keeps the completed node runs of ``old`` and runs
    the failed, cancelled and never-started ones again (retry from failure)."""
    if not old.state.is_final or old.state is RunState.COMPLETED:
        raise Conflict(
            f"Only a run that ended FAILED or CANCELLED can be retried; this one is "
            f"{old.state.value}",
            {"state": [f"Run is {old.state.value}"]},
            ErrorCode.INVALID_TRANSITION,
        )
    run = WorkflowRun(
        workflow_id=old.workflow_id,
        dag=old.dag,
        fail_fast=old.fail_fast,
        node_parameters=old.node_parameters,
        node_inputs=old.node_inputs,
        callback_url=old.callback_url,
        timeout_seconds=old.timeout_seconds or settings.MAX_TIMEOUT_SECONDS,
        max_retries=0,
        retry_of=old.id,
    )
    add_new(session, run)  # with its first history row
    session.flush()
    kept = {
        (row.node, row.instance): row.pipeline_run_id
        for row in old.node_runs
        if row.status is NodeStatus.COMPLETED
    }
    _add_instances(session, run, kept)
    _begin(session, run)
    return run


def _add_instances(
    session: Session, run: WorkflowRun, kept: dict[tuple[str, int], str | None] | None = None
) -> None:
    kept = kept or {}
    now = utcnow()
    for node in run.dag:
        for index, values in enumerate(dag.sweep_instances(node)):
            reused = kept.get((node["name"], index))
            session.add(
                WorkflowNodeRun(
                    workflow_run_id=run.id,
                    node=node["name"],
                    instance=index,
                    sweep_values=values,
                    status=NodeStatus.COMPLETED if reused else NodeStatus.WAITING,
                    pipeline_run_id=reused,
                    reused=bool(reused),
                    reason="kept from the run retried" if reused else None,
                    decided_at=now if reused else None,
                )
            )
    session.flush()


def _begin(session: Session, run: WorkflowRun) -> None:
    run.deadline_at = utcnow() + timedelta(seconds=run.timeout_seconds)
    advance.start(session, run)
