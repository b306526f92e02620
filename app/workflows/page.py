"""The workflow run's page: its DAG, drawn on the server, with every node's state; and
the start page's form to run a workflow (workflows themselves are made with the API)."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.page.dag_layout import DrawnNode, layout, svg
from app.page.registry import Action, RunKindPage, by_parent_name, register
from app.page.starters import Field, Pick, Starter, newest_by_name, register_starter
from app.runs import dispatch
from app.runs.models import Run
from app.runs.states import RunState
from app.workflows import queries, services
from app.workflows.models import Workflow, WorkflowRun
from app.workflows.schedule_target import TARGET
from app.workflows.schemas import WorkflowRunCreateSchema


def _nodes(session: Session, run: Run) -> list[dict[str, Any]]:
    assert isinstance(run, WorkflowRun)
    return queries.node_view(session, run)


def _live_nodes(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per node: its state and each instance's state and run (what the DAG repaints)."""
    return [
        {
            "name": node["name"],
            "state": node["state"],
            "instances": [
                {"state": item["state"], "run_id": item["run_id"]} for item in node["instances"]
            ],
        }
        for node in nodes
    ]


def _live(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, WorkflowRun)
    queries.with_nodes(session, run)
    progress = run.live_progress or {}
    return {
        "percent": 100.0 if run.state == RunState.COMPLETED else progress.get("percent"),
        "message": progress.get("message", ""),
        "nodes": _live_nodes(run.nodes or []),
    }


def _context(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, WorkflowRun)
    # The live view, rendered first, has already read the nodes: one query, not two.
    nodes = run.nodes if run.nodes is not None else _nodes(session, run)
    drawing = layout([(node["name"], node["upstream"]) for node in nodes])
    # Links are built from this prefix: url_for per node and instance is a third of a
    # 1,000-node page's time.
    run_href = url_for("page.runs") + "runs/"
    drawn = [
        DrawnNode(
            node["name"],
            node["state"],
            f" · {len(node['instances'])} instances" if len(node["instances"]) > 1 else "",
            f"{run_href}{node['run_ids'][0]}"
            if len(node["instances"]) == 1 and node["run_ids"]
            else f"#node-{index}",
        )
        for index, node in enumerate(nodes, 1)
    ]
    return {
        "workflow": session.get(Workflow, run.workflow_id),
        "nodes": nodes,
        "dag_svg": Markup(svg(drawing, drawn)),
        "run_href": run_href,
    }


def _retry(session: Session, run: Run) -> str:
    assert isinstance(run, WorkflowRun)
    new = services.retry_run(session, run, current_app.config["SETTINGS"])
    session.commit()
    dispatch.follow_up(session, new.id)
    return new.id


def _start(session: Session, workflow_id: str, body: dict[str, Any]) -> Run:
    """As ``POST /workflows/{id}/runs``: its root nodes start once committed."""
    return TARGET.start(session, workflow_id, body, current_app.config["SETTINGS"])


STARTER = Starter(
    "workflow",
    "Run a workflow",
    Pick(
        "workflow_id",
        "Workflow",
        newest_by_name(Workflow),
        "No workflows yet: make one with POST /api/v1.0/workflows (README, Workflows).",
    ),
    WorkflowRunCreateSchema,
    _start,
    (
        Field(
            "parameters",
            "Parameters per node",
            "json",
            "Optional JSON: per node name, parameters overriding the node's.",
            '{"scenario": {"LOAD_SCALE": "1.5"}}',
        ),
        Field(
            "timeout_seconds",
            "Timeout (seconds)",
            "number",
            "The whole run's; blank: MAX_TIMEOUT_SECONDS.",
        ),
    ),
    order=20,
)


def register_page() -> None:
    register_starter(STARTER)
    register(
        RunKindPage(
            kind="workflow",
            label="Workflow run",
            template="page/workflow_run.html",
            context=_context,
            live=_live,
            describe=by_parent_name(WorkflowRun, Workflow, WorkflowRun.workflow_id),
            actions={
                "retry": Action(
                    "Retry from failure",
                    _retry,
                    lambda run: run.state in (RunState.FAILED, RunState.CANCELLED),
                )
            },
        )
    )
