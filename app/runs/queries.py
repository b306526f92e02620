"""Reads of the run machinery."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.runs.models import RunArtifact, RunLogLine


def list_log_lines(session: Session, run_id: str, after: int, limit: int) -> Sequence[RunLogLine]:
    """Log lines with ``seq > after``, oldest first."""
    return session.scalars(
        select(RunLogLine)
        .where(RunLogLine.run_id == run_id, RunLogLine.seq > after)
        .order_by(RunLogLine.seq)
        .limit(limit)
    ).all()


def get_artifact(session: Session, run_id: str, name: str) -> RunArtifact:
    """The artifact ``name`` of a run; a 404 says which artifacts the run does have."""
    artifact = session.scalar(
        select(RunArtifact).where(RunArtifact.run_id == run_id, RunArtifact.name == name)
    )
    if artifact is None:
        names = session.scalars(
            select(RunArtifact.name).where(RunArtifact.run_id == run_id).order_by(RunArtifact.name)
        ).all()
        has = ", ".join(repr(n) for n in names) or "none yet (outputs come when the run ends)"
        raise NotFound(
            f"Run {run_id} has no artifact {name!r}; its artifacts: {has}",
            {"name": [f"No artifact {name!r}; the run's artifacts: {has}"]},
        )
    return artifact
