"""Advancing a workflow run: which node instances start, are skipped, or end the run.

Every decision is made with the workflow run's row locked: when a node's pipeline run
ends, the run machinery locks the parent and calls ``WorkflowPolicy.child_ended`` in the
same transaction (app/runs/children.py). Two parents finishing together therefore
serialize on that lock and the second sees the first's decisions: a join node starts
exactly once. SQLite's BEGIN IMMEDIATE gives the same guarantee. New pipeline runs are
published right after the commit (app/runs/dispatch.py).

Node instance statuses live in ``workflow_node_runs`` so that each decision reads a few
small answers, not every run of a large workflow: a node ending costs the same handful of
queries in a 1,000-node workflow as in a 3-node one (see ``_Board``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, exists, func, select, true
from sqlalchemy.orm import Session

from app.jobs import kinds as job_kinds
from app.jobs import services as job_services
from app.pipelines import services as pipeline_services
from app.pipelines.models import Pipeline
from app.runs import children
from app.runs.models import Run, RunArtifact
from app.runs.services import add_new, transition, write_log
from app.runs.states import ErrorType, RunState
from app.timeutil import utcnow
from app.workflows import dag
from app.workflows.graphs import graph_of
from app.workflows.models import NodeStatus, WorkflowNodeRun, WorkflowRun

OPEN_NODE = (NodeStatus.WAITING, NodeStatus.STARTED)
UNSUCCESSFUL = (NodeStatus.FAILED, NodeStatus.CANCELLED, NodeStatus.SKIPPED)
_STATUS_OF_RUN = {
    RunState.COMPLETED: NodeStatus.COMPLETED,
    RunState.FAILED: NodeStatus.FAILED,
    RunState.CANCELLED: NodeStatus.CANCELLED,
}


class WorkflowPolicy:
    """The workflow kind's answer to its children ending (see app/runs/children.py)."""

    def child_ended(self, session: Session, parent: Run, child: Run) -> None:
        run = _as_workflow_run(session, parent)
        row = session.scalar(
            select(WorkflowNodeRun).where(
                WorkflowNodeRun.workflow_run_id == run.id,
                WorkflowNodeRun.pipeline_run_id == child.id,
            )
        )
        if row is None or row.status.is_final:
            return
        _settle(session, run, row, child)
        if not run.state.is_final:
            _decide(session, run, graph_of(run).dependants.get(row.node, []))

    def reconcile(self, session: Session, parent: Run) -> None:
        run = _as_workflow_run(session, parent)
        for row in session.scalars(
            select(WorkflowNodeRun).where(
                WorkflowNodeRun.workflow_run_id == run.id,
                WorkflowNodeRun.status == NodeStatus.STARTED,
            )
        ):
            child = session.get(Run, row.pipeline_run_id) if row.pipeline_run_id else None
            if child is None or child.state.is_final:
                _settle(session, run, row, child)
        if not run.state.is_final:
            _decide(session, run, graph_of(run).order)


def _as_workflow_run(session: Session, parent: Run) -> WorkflowRun:
    if isinstance(parent, WorkflowRun):
        return parent
    found = session.get(WorkflowRun, parent.id)
    assert found is not None
    return found


def start(session: Session, run: WorkflowRun) -> None:
    """A new (or retried) workflow run: start every node whose upstream is already done."""
    transition(session, run, RunState.RUNNING, reason="started")
    _decide(session, run, graph_of(run).order)


def _settle(session: Session, run: WorkflowRun, row: WorkflowNodeRun, child: Run | None) -> None:
    """Record how a node instance's pipeline run ended."""
    if child is None:
        row.status, row.reason = NodeStatus.FAILED, "its pipeline run was deleted"
    else:
        row.status = _STATUS_OF_RUN[child.state]
        row.reason = child.error_message if child.error_type else None
    row.decided_at = utcnow()
    session.flush()
    write_log(session, run, [f"node {_label(row)} ended {row.status.value}" + _because(row)])
    if row.status is NodeStatus.FAILED and run.fail_fast and run.state is RunState.RUNNING:
        _close_open_nodes(session, run, f"fail_fast: node {row.node} failed")


def _among(graph: dag.Graph, names: frozenset[str]) -> ColumnElement[bool]:
    """``node IN names``, spelled with the shorter list: a join's 1,000 parents are
    "every node but the root and the join", which the database checks far faster."""
    listed, nodes = graph.shorter(names)
    if listed:
        return WorkflowNodeRun.node.in_(nodes)
    return WorkflowNodeRun.node.not_in(nodes) if nodes else true()


class _Board:
    """What one decision pass knows about node instances, kept current as the pass starts,
    skips or fails nodes (the run's row is locked throughout, so nothing else moves them).

    Read up front: the candidates' WAITING instances and the nodes that did not succeed
    (usually none), one query each. Whether a set of upstream nodes still has an open
    instance is known from the pass itself (a node still waiting, or started by it), else
    asked once per distinct set. A node ending therefore costs a few small queries however
    wide the workflow: the 1,000 parents of a join are not re-read at every parent's end.
    """

    def __init__(self, session: Session, run: WorkflowRun, graph: dag.Graph, nodes: list[str]):
        self.session, self.run, self.graph = session, run, graph
        self.waiting: dict[str, list[WorkflowNodeRun]] = {}
        self.known_open: set[str] = set()  # still waiting, or started by this pass
        self._load_waiting(nodes)
        self.failed = set(
            session.scalars(
                select(WorkflowNodeRun.node)
                .distinct()
                .where(
                    WorkflowNodeRun.workflow_run_id == run.id,
                    WorkflowNodeRun.status.in_(UNSUCCESSFUL),
                )
            )
        )
        self._open: dict[frozenset[str], bool] = {}

    def _load_waiting(self, nodes: list[str]) -> None:
        rows = self.session.scalars(
            select(WorkflowNodeRun)
            .where(
                WorkflowNodeRun.workflow_run_id == self.run.id,
                WorkflowNodeRun.status == NodeStatus.WAITING,
                _among(self.graph, frozenset(nodes)),
            )
            .order_by(WorkflowNodeRun.id)
        )
        for node in nodes:
            self.waiting[node] = []
        for row in rows:
            self.waiting[row.node].append(row)
            self.known_open.add(row.node)

    def waiting_rows(self, node: str) -> list[WorkflowNodeRun]:
        if node not in self.waiting:  # reached by a skip: not among the first candidates
            self._load_waiting([node])
        return self.waiting[node]

    def unsuccessful(self, nodes: frozenset[str]) -> list[str]:
        return sorted(self.failed & nodes)

    def any_open(self, key: frozenset[str]) -> bool:
        if not self.known_open.isdisjoint(key):
            return True
        if key not in self._open:
            self._open[key] = bool(
                self.session.scalar(
                    select(
                        exists().where(
                            WorkflowNodeRun.workflow_run_id == self.run.id,
                            WorkflowNodeRun.status.in_(OPEN_NODE),
                            _among(self.graph, key),
                        )
                    )
                )
            )
        return self._open[key]

    def moved(self, node: str, statuses: list[NodeStatus]) -> None:
        """The node's waiting instances now have ``statuses`` (started, skipped, failed)."""
        self.waiting[node] = []
        self.known_open.discard(node)
        if NodeStatus.STARTED in statuses:
            self.known_open.add(node)
        if any(status in UNSUCCESSFUL for status in statuses):
            self.failed.add(node)
        self._open = {key: value for key, value in self._open.items() if node not in key}


@dataclass
class _Pass:
    """One decision pass: its graph and board, the log lines it writes at its end (one
    insert), and the pipelines it started runs of (held, so each is read once)."""

    graph: dag.Graph
    board: _Board
    lines: list[str] = field(default_factory=list)
    pipelines: dict[str, Pipeline | None] = field(default_factory=dict)

    def pipeline(self, session: Session, pipeline_id: str) -> Pipeline | None:
        if pipeline_id not in self.pipelines:
            self.pipelines[pipeline_id] = session.get(Pipeline, pipeline_id)
        return self.pipelines[pipeline_id]


def _decide(session: Session, run: WorkflowRun, candidates: Iterable[str]) -> None:
    """Start or skip the candidates whose upstream allows it; then end the run if done."""
    if run.state is RunState.CANCELLING:
        _close_open_nodes(session, run, "the workflow run was cancelled")
    elif run.state is RunState.RUNNING and (queue := deque(dict.fromkeys(candidates))):
        graph = graph_of(run)
        step = _Pass(graph, _Board(session, run, graph, list(queue)))
        queued = set(queue)
        while queue:
            name = queue.popleft()
            queued.discard(name)
            if _decide_node(session, run, step, name):
                if run.fail_fast and name in step.board.failed:  # could not start
                    write_log(session, run, step.lines)
                    step.lines.clear()
                    _close_open_nodes(session, run, f"fail_fast: node {name} could not start")
                    break
                # It ended without a run (skipped, or could not start): its dependants may
                # now be decided too.
                for follower in graph.dependants.get(name, []):
                    if follower not in queued:
                        queue.append(follower)
                        queued.add(follower)
        if step.lines:
            write_log(session, run, step.lines)
    _end_if_done(session, run)


def _decide_node(session: Session, run: WorkflowRun, step: _Pass, name: str) -> bool:
    """Start or skip the node's waiting instances if its upstream allows; return whether
    one of them ended there (skipped, or could not start)."""
    rows = step.board.waiting_rows(name)
    if not rows:
        return False
    node = step.graph.nodes[name]
    parents = step.graph.upstream_set[name]
    unsuccessful = step.board.unsuccessful(parents)
    all_success = node.get("trigger", dag.ALL_SUCCESS) == dag.ALL_SUCCESS
    if all_success and unsuccessful:
        _skip(rows, unsuccessful, step.lines)
        step.board.moved(name, [NodeStatus.SKIPPED])
        return True
    if step.board.any_open(parents):
        return False  # still waiting for upstream nodes to end
    statuses = [_start_instance(session, run, step, node, row) for row in rows]
    step.board.moved(name, statuses)
    return NodeStatus.FAILED in statuses


def _skip(rows: list[WorkflowNodeRun], upstream: list[str], lines: list[str]) -> None:
    reason = f"upstream {', '.join(upstream)} did not complete"
    for row in rows:
        row.status, row.reason, row.decided_at = NodeStatus.SKIPPED, reason, utcnow()
    lines.append(f"node {rows[0].node} skipped: {reason}")


def _start_instance(
    session: Session, run: WorkflowRun, step: _Pass, node: dag.Node, row: WorkflowNodeRun
) -> NodeStatus:
    """Create the node instance's run: a pipeline run, or a run of a Python job kind.
    Return the instance's new status: STARTED, or FAILED if it cannot start."""
    if "job_kind" in node:
        loaded = job_kinds.installed().get(node["job_kind"])
        if loaded is None:
            return _fail_to_start(row, f"job kind {node['job_kind']} is not installed", step.lines)
    else:
        pipeline = step.pipeline(session, node["pipeline_id"])
        if pipeline is None:
            return _fail_to_start(
                row, f"pipeline {node['pipeline_id']} no longer exists", step.lines
            )
    artifact_inputs, missing = _artifact_inputs(session, run, step.graph, node)
    if missing and node.get("trigger", dag.ALL_SUCCESS) == dag.ALL_SUCCESS:
        return _fail_to_start(row, f"missing upstream artifacts: {', '.join(missing)}", step.lines)
    parameters = {
        **node.get("parameters", {}),
        **run.node_parameters.get(node["name"], {}),
        **row.sweep_values,
    }
    data = {"inputs": run.node_inputs.get(node["name"], []), "parameters": parameters}
    if "job_kind" in node:
        child: Run = job_services.new_run(
            loaded.kind,
            job_kinds.queue_of(loaded.name),
            data,
            current_app.config["SETTINGS"],
            parent_run_id=run.id,
            artifact_inputs=artifact_inputs,
        )
    else:
        child = pipeline_services.new_run(
            pipeline, data, parent_run_id=run.id, artifact_inputs=artifact_inputs
        )
    add_new(session, child)  # flushed with the pass's other writes, in batches
    row.status, row.pipeline_run_id, row.decided_at = NodeStatus.STARTED, child.id, utcnow()
    note = f" (no {', '.join(missing)})" if missing else ""
    step.lines.append(f"node {_label(row)} started: run {child.id}{note}")
    return NodeStatus.STARTED


def _fail_to_start(row: WorkflowNodeRun, reason: str, lines: list[str]) -> NodeStatus:
    row.status, row.reason, row.decided_at = NodeStatus.FAILED, reason, utcnow()
    lines.append(f"node {_label(row)} could not start: {reason}")
    return NodeStatus.FAILED


def _artifact_inputs(
    session: Session, run: WorkflowRun, graph: dag.Graph, node: dag.Node
) -> tuple[list[dict[str, str]], list[str]]:
    """References to the upstream artifacts this node takes, and the ones that are missing.

    From a sweep node, each instance's file arrives in a folder named after its values
    (``LOAD_SCALE-0.8/load.csv``), so the downstream model can tell them apart.
    """
    found: list[dict[str, str]] = []
    missing: list[str] = []
    nodes = graph.nodes
    for item in node.get("inputs", []):
        source, artifact = item["from"]["node"], item["from"]["artifact"]
        swept = dag.instance_count(nodes[source]) > 1 or bool(nodes[source].get("sweep"))
        rows = session.execute(
            select(WorkflowNodeRun.pipeline_run_id, WorkflowNodeRun.sweep_values)
            .where(
                WorkflowNodeRun.workflow_run_id == run.id,
                WorkflowNodeRun.node == source,
                WorkflowNodeRun.status == NodeStatus.COMPLETED,
            )
            .order_by(WorkflowNodeRun.instance)
        ).all()
        have = set(
            session.scalars(
                select(RunArtifact.run_id).where(
                    RunArtifact.run_id.in_([r[0] for r in rows]), RunArtifact.name == artifact
                )
            )
        )
        for run_id, values in rows:
            if run_id not in have:
                missing.append(f"{source}/{artifact}")
                continue
            name = f"{dag.instance_label(values)}/{item['name']}" if swept else item["name"]
            found.append({"name": name, "run_id": run_id, "artifact": artifact})
        if not rows:
            missing.append(f"{source}/{artifact}")
    return found, missing


def _close_open_nodes(session: Session, run: WorkflowRun, reason: str) -> None:
    """Nodes that never started will not: the run is being cancelled or failed fast."""
    rows = session.scalars(
        select(WorkflowNodeRun).where(
            WorkflowNodeRun.workflow_run_id == run.id,
            WorkflowNodeRun.status == NodeStatus.WAITING,
        )
    ).all()
    for row in rows:
        row.status, row.reason, row.decided_at = NodeStatus.CANCELLED, reason, utcnow()
    if rows:
        session.flush()
        write_log(session, run, [f"{len(rows)} waiting node instance(s) will not start: {reason}"])


def _end_if_done(session: Session, run: WorkflowRun) -> None:
    """End the run once no node instance is waiting or running; record progress."""
    counts = session.execute(
        select(WorkflowNodeRun.status, func.count())
        .where(WorkflowNodeRun.workflow_run_id == run.id)
        .group_by(WorkflowNodeRun.status)
    ).all()
    by_status = {NodeStatus(status): count for status, count in counts}
    total = sum(by_status.values())
    open_ = by_status.get(NodeStatus.WAITING, 0) + by_status.get(NodeStatus.STARTED, 0)
    run.progress_percent = 100.0 * (total - open_) / total if total else 100.0
    run.progress_message = f"{total - open_} of {total} node runs ended"
    run.progress_updated_at = utcnow()
    if open_ and not (run.fail_fast and by_status.get(NodeStatus.FAILED)):
        session.flush()
        return
    if run.state is RunState.CANCELLING:
        if not open_:
            transition(
                session,
                run,
                RunState.CANCELLED,
                reason="cancelled; every node has stopped",
                error=(ErrorType.CANCELLED, "Cancelled by a client", None),
            )
        return
    if run.state is not RunState.RUNNING:
        return
    failed = _failed_nodes(session, run)
    if failed:
        message = "Node(s) did not complete: " + "; ".join(
            f"{name}: {details['reason'] or details['status']}" for name, details in failed.items()
        )
        transition(
            session,
            run,
            RunState.FAILED,
            reason=message[:2000],
            error=(ErrorType.NODE_FAILED, message[:2000], {"nodes": failed}),
        )
    elif not open_:
        transition(session, run, RunState.COMPLETED, reason="every node completed")


def _failed_nodes(session: Session, run: WorkflowRun) -> dict[str, dict[str, Any]]:
    """The nodes that failed or were cancelled (not those merely skipped after them)."""
    rows = session.execute(
        select(WorkflowNodeRun.node, WorkflowNodeRun.status, WorkflowNodeRun.reason)
        .where(
            WorkflowNodeRun.workflow_run_id == run.id,
            WorkflowNodeRun.status.in_((NodeStatus.FAILED, NodeStatus.CANCELLED)),
        )
        .order_by(WorkflowNodeRun.id)
    ).all()
    failed: dict[str, dict[str, Any]] = {}
    for name, status, reason in rows:
        failed.setdefault(name, {"status": status.value, "reason": reason})
    if not failed:  # only skips: name them
        for name, status, reason in session.execute(
            select(WorkflowNodeRun.node, WorkflowNodeRun.status, WorkflowNodeRun.reason).where(
                WorkflowNodeRun.workflow_run_id == run.id,
                WorkflowNodeRun.status == NodeStatus.SKIPPED,
            )
        ):
            failed.setdefault(name, {"status": status.value, "reason": reason})
    return failed


def _label(row: WorkflowNodeRun) -> str:
    if not row.sweep_values:
        return row.node
    values = ", ".join(f"{k}={v}" for k, v in sorted(row.sweep_values.items()))
    return f"{row.node}[{values}]"


def _because(row: WorkflowNodeRun) -> str:
    return f": {row.reason}" if row.reason else ""


children.register_parent_kind("workflow", WorkflowPolicy())
