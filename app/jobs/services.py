"""Writes of the jobs domain. Functions take the session, flush, never commit."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ValidationFailed
from app.jobkit.kind import JobKind
from app.jobs import kinds
from app.jobs.models import JobKindWorker, JobRun
from app.runs.services import add_new
from app.timeutil import utcnow


def check_parameters(kind: type[JobKind], parameters: dict[str, Any], where: str) -> None:
    """Validate ``parameters`` with the kind's schema; a 422 naming each field if wrong.

    ``where`` is the path of the parameters in the request (``json.parameters``)."""
    try:
        kind.Parameters().load(parameters)
    except ValidationError as exc:
        fields = ", ".join(sorted(str(name) for name in exc.messages)) or "parameters"
        errors: Any = exc.messages
        for part in reversed(where.split(".")):
            errors = {part: errors}
        raise ValidationFailed(
            f"Invalid parameters for job kind {kind.name!r}: {fields}", errors
        ) from None


def create_run(
    session: Session,
    kind: type[JobKind],
    queue: str,
    data: dict[str, Any],
    settings: Settings,
) -> JobRun:
    """Record a READY run of ``kind``; the parameters were checked by ``check_parameters``."""
    run = new_run(kind, queue, data, settings)
    add_new(session, run)
    session.flush()
    return run


def new_run(
    kind: type[JobKind],
    queue: str,
    data: dict[str, Any],
    settings: Settings,
    *,
    parent_run_id: str | None = None,
    artifact_inputs: list[dict[str, str]] | None = None,
) -> JobRun:
    """The run ``create_run`` records, not yet added: a workflow adds its nodes' at once
    (``app.runs.services.add_new``), naming itself their parent."""
    timeout = data.get("timeout_seconds") or kind.timeout_seconds
    return JobRun(
        job_kind=kind.name,
        queue=queue,
        parent_run_id=parent_run_id,
        parameters=data.get("parameters", {}),
        inputs=data.get("inputs", []),
        artifact_inputs=artifact_inputs or [],
        callback_url=data.get("callback_url"),
        timeout_seconds=min(
            timeout or settings.DEFAULT_TIMEOUT_SECONDS, settings.MAX_TIMEOUT_SECONDS
        ),
        max_retries=kind.max_retries,
        retry_backoff_seconds=kind.retry_backoff_seconds,
    )


def record_worker_kinds(session: Session, worker_id: str, kinds: list[str]) -> None:
    """A worker says which kinds it runs now: replace what it said before."""
    session.execute(delete(JobKindWorker).where(JobKindWorker.worker_id == worker_id))
    now = utcnow()
    session.add_all(JobKindWorker(kind=k, worker_id=worker_id, seen_at=now) for k in set(kinds))
    session.flush()


def start_run(
    session: Session, name: str, data: dict[str, Any], settings: Settings, where: str
) -> JobRun:
    """A run of the installed kind ``name``, as a client asks for one (API, page, schedule):
    NotFound if no such kind is installed, its parameters checked by the kind's schema and
    errors named at ``where`` (``json.parameters``)."""
    kind = kinds.get_kind(name)
    check_parameters(kind, data.get("parameters", {}), where)
    return create_run(session, kind, kinds.queue_of(name), data, settings)
