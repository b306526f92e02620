"""The job run's page: what it adds to the generic run page (app/page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.jobs import queries
from app.jobs.models import JobRun
from app.page.registry import RunKindPage, register
from app.runs.models import Run


def _waiting_reason(session: Session, run: JobRun) -> str | None:
    seconds = current_app.config["SETTINGS"].WORKER_ANNOUNCE_SECONDS
    workers = queries.workers_by_kind(session, seconds)
    return queries.with_waiting_reason(run, workers, seconds).waiting_reason


def _context(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, JobRun)
    return {
        "job_kind": run.job_kind,
        "parameters": run.parameters,
        "parent_run_id": run.parent_run_id,
    }


def _live(session: Session, run: Run) -> dict[str, Any]:
    """A READY run says, as it polls, why it has not started (no worker runs its kind)."""
    assert isinstance(run, JobRun)
    return {"waiting_reason": _waiting_reason(session, run)}


def _describe(session: Session, ids: Sequence[str]) -> Mapping[str, str]:
    rows = session.execute(select(JobRun.id, JobRun.job_kind).where(JobRun.id.in_(ids)))
    return {run_id: kind for run_id, kind in rows}


def register_page() -> None:
    register(
        RunKindPage(
            kind="job",
            label="Job run",
            template="page/job_run.html",
            context=_context,
            live=_live,
            describe=_describe,
        )
    )
