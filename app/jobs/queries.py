"""Reads of the jobs domain. ``get_*`` raise NotFound; a run is found under its kind only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.errors import NotFound
from app.jobs.models import JobKindWorker, JobRun
from app.pagination import paginate
from app.runs.queries import get_artifact
from app.runs.states import RunState
from app.timeutil import utcnow

#: A worker that has not announced for this many announce periods is counted as gone.
STALE_PERIODS = 3


def workers_by_kind(session: Session, announce_seconds: float) -> dict[str, int]:
    """How many workers announced each kind recently."""
    since = utcnow() - timedelta(seconds=announce_seconds * STALE_PERIODS)
    rows = session.execute(
        select(JobKindWorker.kind, func.count())
        .where(JobKindWorker.seen_at >= since)
        .group_by(JobKindWorker.kind)
    )
    return {kind: count for kind, count in rows}


def with_waiting_reason(run: JobRun, workers: dict[str, int], announce_seconds: float) -> JobRun:
    """Say why a READY run has not started when no worker runs its kind."""
    if run.state is RunState.READY and not workers.get(run.job_kind):
        window = announce_seconds * STALE_PERIODS
        run.waiting_reason = (
            f"No worker runs job kind {run.job_kind!r} (none announced it in the last "
            f"{window:g} s); the run waits on queue {run.queue!r} until one does"
        )
    return run


def get_run(session: Session, kind: str, run_id: str) -> JobRun:
    run = session.scalar(select(JobRun).where(JobRun.id == run_id, JobRun.job_kind == kind))
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"Job kind {kind} has no run {run_id}"]})
    return run


def list_runs(
    session: Session, kind: str, state: RunState | None, limit: int, cursor: str | None
) -> tuple[Sequence[JobRun], str | None]:
    query = (
        select(JobRun)
        .where(JobRun.job_kind == kind)
        .options(selectinload(JobRun.states), selectinload(JobRun.artifacts))
    )
    if state is not None:
        query = query.where(JobRun.state == state)
    return paginate(session, query, JobRun.created_at, JobRun.id, limit, cursor)


def get_input_key(session: Session, run_id: str, name: str) -> str:
    """Storage key of input ``name`` of run ``run_id`` (for the worker): an upstream
    artifact the run was given by reference."""
    run = session.get(JobRun, run_id)
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"No job run {run_id}"]})
    for item in run.artifact_inputs:
        if item["name"] == name:
            return get_artifact(session, item["run_id"], item["artifact"]).storage_key
    raise NotFound("Input not found", {"name": [f"Run {run_id} has no input {name!r}"]})
