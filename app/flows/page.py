"""The flow's page: its steps drawn as a graph (state, rows, seconds), the SQL of its
transforms, and a SQL error's line marked in it; and the start page's form to run a flow
input (stores and flow inputs are made with the API)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.flows import queries, services
from app.flows import steps as flow_steps
from app.flows.models import FlowInput, FlowRun
from app.flows.schemas import STEP_STATES, FlowCreateSchema
from app.flows.sql import SqlProblem
from app.page.dag_layout import DrawnNode, layout, svg
from app.page.registry import Action, RunKindPage, by_parent_name, register
from app.page.starters import Pick, Starter, newest_by_name, register_starter
from app.runs import broker
from app.runs.models import Run

NODE_WIDTH = 250  # room for "COMPLETED · 12.3M rows · 10.25 s"


#: Step graphs by flow input id (flow inputs never change); a lock, as cachetools' caches
#: are not thread-safe.
_GRAPHS: LRUCache[str, list[tuple[str, list[str]]]] = LRUCache(maxsize=512)
_GRAPHS_LOCK = threading.Lock()


def _count(rows: int) -> str:
    """Rows in a box's few characters: 950, 12.3k, 4.5M."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if round(rows / size, 1) >= 1:
            return f"{rows / size:.1f}{unit}"
    return str(rows)


def step_detail(step: Mapping[str, Any]) -> str:
    """What a step's box says after its state: rows and seconds once it has them."""
    parts = []
    if step.get("rows") is not None:
        parts.append(f"{_count(step['rows'])} rows")
    if step.get("seconds") is not None:
        parts.append(f"{step['seconds']:.2f} s")
    return "".join(f" · {part}" for part in parts)


def _steps(run: FlowRun) -> list[dict[str, Any]]:
    """The steps as the worker last reported them (planned ones for a flow created before
    steps were planned at creation), each with its box's text."""
    steps = run.steps
    if not steps:
        flow_input = run.flow_input
        steps = flow_steps.plan(flow_input.sources, flow_input.order, flow_input.checks)
    return [{**step, "detail": step_detail(step)} for step in steps]


def _step_graph(flow_input: FlowInput) -> list[tuple[str, list[str]]]:
    """The flow input's step graph, derived from its SQL once per process. Should the
    parser refuse SQL it once accepted (an upgrade), the stored transform edges still
    draw the transforms, without their sources."""
    with _GRAPHS_LOCK:
        graph = _GRAPHS.get(flow_input.id)
    if graph is None:
        try:
            graph = flow_steps.step_graph(
                flow_input.sources, flow_input.transforms, flow_input.order, flow_input.checks
            )
        except SqlProblem:
            graph = [
                (flow_steps.transform_step(name), [flow_steps.transform_step(up) for up in ups])
                for name, ups in ((n, flow_input.graph.get(n, [])) for n in flow_input.order)
            ]
        with _GRAPHS_LOCK:
            _GRAPHS[flow_input.id] = graph
    return graph


def _live(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, FlowRun)
    return {
        "nodes": [
            {"name": s["name"], "state": s["state"], "detail": s["detail"], "rows": s["rows"],
             "seconds": s["seconds"], "message": s["message"], "instances": []}
            for s in _steps(run)
        ]
    }  # fmt: skip


def _sql_lines(flow_input: FlowInput) -> list[dict[str, Any]]:
    """Each transform's SQL as numbered lines (the line numbers SQL errors give)."""
    return [
        {
            "name": transform["name"].lower(),
            "persist": bool(transform.get("persist")),
            "lines": transform["sql"].rstrip().split("\n"),
        }
        for transform in flow_input.transforms
    ]


def _context(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, FlowRun)
    flow_input = run.flow_input
    steps = _steps(run)
    known = {step["name"] for step in steps}
    graph = [(name, up) for name, up in _step_graph(flow_input) if name in known]
    drawing = layout(graph, NODE_WIDTH)
    drawn = [
        DrawnNode(step["name"], step["state"], step["detail"], f"#step-{index}")
        for index, step in enumerate(steps, 1)
        if step["name"] in drawing.boxes
    ]
    return {
        "flow_input": flow_input,
        "steps": steps,
        "dag_svg": Markup(svg(drawing, drawn, "Flow steps")),
        "transforms": _sql_lines(flow_input),
        "step_states": STEP_STATES,
    }


def _rerun(session: Session, run: Run) -> str:
    assert isinstance(run, FlowRun)
    new = services.create_run(
        session, {"flow_input_id": run.flow_input_id, "callback_url": run.callback_url}
    )
    broker.commit_and_publish(session, new)
    return new.id


def _start(session: Session, flow_input_id: str, body: dict[str, Any]) -> Run:
    """As ``POST /flows`` with ``flow_input_id``."""
    queries.get_flow_input(session, flow_input_id)  # 404 naming flow_input_id, beside it
    return services.create_run(session, {**body, "flow_input_id": flow_input_id})


STARTER = Starter(
    "flow",
    "Run a flow input",
    Pick(
        "flow_input_id",
        "Flow input",
        newest_by_name(FlowInput),
        "No flow inputs yet: make data stores and a flow input with the API (README, Flows).",
    ),
    lambda: FlowCreateSchema(exclude=("flow_input_id",)),  # the pick names it
    _start,
    order=40,
)


def register_page() -> None:
    register_starter(STARTER)
    register(
        RunKindPage(
            kind="flow",
            label="Flow",
            template="page/flow_run.html",
            context=_context,
            live=_live,
            describe=by_parent_name(FlowRun, FlowInput, FlowRun.flow_input_id),
            actions={"rerun": Action("Re-run", _rerun, lambda run: run.state.is_final)},
        )
    )
