"""Reads of the page: the runs list and the generic live view of one run (any kind)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.page import registry
from app.pagination import paginate
from app.runs.models import Run
from app.runs.states import RunState


def get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"No run {run_id}"]})
    return run


def list_runs(
    session: Session,
    kind: str | None,
    state: RunState | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of runs of every kind (or one), newest first, as JSON-ready rows."""
    query = select(Run)
    if kind:
        query = query.where(Run.kind == kind)
    if state:
        query = query.where(Run.state == state)
    runs, next_cursor = paginate(session, query, Run.created_at, Run.id, limit, cursor)
    return _rows(session, runs), next_cursor


def _rows(session: Session, runs: Sequence[Run]) -> list[dict[str, Any]]:
    by_kind: dict[str, list[str]] = {}
    for run in runs:
        by_kind.setdefault(run.kind, []).append(run.id)
    described: dict[str, str] = {}
    for kind, ids in by_kind.items():
        page = registry.for_kind(kind)
        if page is not None:
            described.update(page.describe(session, ids))
    return [
        {
            "id": run.id,
            "kind": run.kind,
            "what": described.get(run.id, ""),
            "state": run.state.value,
            "percent": _percent(run),
            "message": run.progress_message or "",
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "url": url_for("page.run", run_id=run.id),
        }
        for run in runs
    ]


def _percent(run: Run) -> float | None:
    if run.state == RunState.COMPLETED:
        return 100.0
    return run.progress_percent


def live_view(session: Session, run: Run) -> dict[str, Any]:
    """What a run page polls: state, history, progress, error, artifacts, and the fields
    the run's kind adds. Plain values only, so its hash is a stable ETag."""
    view: dict[str, Any] = {
        "id": run.id,
        "kind": run.kind,
        "state": run.state.value,
        "final": run.state.is_final,
        "percent": _percent(run),
        "message": run.progress_message or "",
        "attempt": run.attempt,
        "history": [
            {
                "state": change.state.value,
                "attempt": change.attempt,
                "reason": change.reason or "",
                "at": change.at.isoformat(),
            }
            for change in run.states
        ],
        "error": run.error,
        "artifacts": [
            {
                "name": artifact.name,
                "size": artifact.size,
                "partial": artifact.partial,
                "url": url_for("page.artifact", run_id=run.id, name=artifact.name),
            }
            for artifact in run.artifacts
        ],
        "log_seq": run.next_log_seq - 1,
    }
    page = registry.for_kind(run.kind)
    if page is not None:
        view["actions"] = [name for name, action in page.actions.items() if action.offered(run)]
        view.update(page.live(session, run))
    return view
