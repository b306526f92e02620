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
    artifact = session.scalar(
        select(RunArtifact).where(RunArtifact.run_id == run_id, RunArtifact.name == name)
    )
    if artifact is None:
        raise NotFound("Artifact not found", {"name": [f"Run {run_id} has no artifact {name!r}"]})
    return artifact
