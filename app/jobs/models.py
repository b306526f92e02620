"""Tables of the jobs domain: runs of Python job kinds, and which workers run which kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.celery_config import TASK_JOB_RUN
from app.extensions import db
from app.runs.models import Run
from app.timeutil import utcnow
from app.types import UTCDateTime


class JobRun(Run):
    """One execution of a job kind, with its parameters and inputs."""

    __tablename__ = "job_runs"
    __mapper_args__ = {"polymorphic_identity": "job"}
    task_name = TASK_JOB_RUN

    id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    job_kind: Mapped[str] = mapped_column(String(60), index=True)
    # As the client sent them (JSON); the job process loads them through the kind's schema.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inputs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Upstream artifacts by reference ({"name", "run_id", "artifact"}): workflow nodes only.
    artifact_inputs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Decided at creation (JOB_KIND_QUEUES), so a retry goes where the first attempt went.
    queue: Mapped[str] = mapped_column(String(200))

    # Not a column: why a READY run has not started, set by queries for a response.
    waiting_reason = None

    def job_spec(self) -> dict[str, Any]:
        return {
            "kind": self.job_kind,
            "parameters": self.parameters,
            "files": [
                {
                    "name": item["name"],
                    "url": url_for("job_worker.input", run_id=self.id, name=item["name"]),
                }
                for item in self.artifact_inputs
            ],
            "inputs": self.inputs,
        }

    def artifact_url(self, name: str) -> str:
        return url_for(
            "jobs.RunArtifact", kind=self.job_kind, run_id=self.id, name=name, _external=True
        )

    def task_queue(self) -> str | None:
        return self.queue


class JobKindWorker(db.Model):
    """A worker that said, recently, that it runs this kind (WORKER_ANNOUNCE_SECONDS)."""

    __tablename__ = "job_kind_workers"

    kind: Mapped[str] = mapped_column(String(60), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
