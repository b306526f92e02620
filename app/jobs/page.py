"""The job run's page, and the start page's form to run a job kind: what job runs add to
the generic page (app/page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.jobs import kinds, queries, services
from app.jobs.models import JobRun
from app.jobs.schemas import JobRunCreateSchema
from app.page.registry import RunKindPage, register
from app.page.starters import Field, Pick, Starter, register_starter
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


def _choices(session: Session, limit: int) -> list[tuple[str, str]]:
    """The installed kinds (code, not rows: all of them), with their titles."""
    loaded = sorted(kinds.installed().values(), key=lambda item: item.name)[:limit]
    return [(item.name, f"{item.name} · {item.kind.title}" if item.kind.title else item.name)
            for item in loaded]  # fmt: skip


def _start(session: Session, name: str, body: dict[str, Any]) -> Run:
    """As ``POST /job-kinds/{kind}/runs``: parameters checked by the kind's own schema."""
    return services.start_run(session, name, body, current_app.config["SETTINGS"], "parameters")


STARTER = Starter(
    "job",
    "Run a job kind",
    Pick("kind", "Job kind", _choices, "No job kinds installed (JOB_KINDS)."),
    JobRunCreateSchema,
    _start,
    (
        Field(
            "parameters",
            "Parameters",
            "json",
            "A JSON object, checked against the kind's parameter schema "
            "(GET /api/v1.0/job-kinds/{kind} shows it).",
            '{"nominal_voltage": 2401.7771}',
        ),
        Field(
            "inputs",
            "Inputs by URL",
            "json",
            "Optional: files fetched into the job folder first.",
            '[{"name": "voltages.csv", "url": "https://example.com/voltages.csv"}]',
        ),
        Field("timeout_seconds", "Timeout (seconds)", "number", "Blank: the kind's."),
    ),
    order=30,
)


def register_page() -> None:
    register_starter(STARTER)
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
