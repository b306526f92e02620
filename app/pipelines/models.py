"""Tables of the pipelines domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.celery_config import TASK_PIPELINE_RUN
from app.extensions import db
from app.runs.models import Run, new_id
from app.timeutil import utcnow
from app.types import UTCDateTime


class Pipeline(db.Model):
    __tablename__ = "pipelines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer, default=2)
    retry_backoff_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    files: Mapped[list[PipelineFile]] = relationship(
        order_by="PipelineFile.name", cascade="all, delete-orphan", passive_deletes=True
    )


class PipelineFile(db.Model):
    """A model or support file (include, player, weather) of a pipeline."""

    __tablename__ = "pipeline_files"
    __table_args__ = (UniqueConstraint("pipeline_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PipelineRun(Run):
    """One execution of a pipeline, with its inputs and effective parameters."""

    __tablename__ = "pipeline_runs"
    __mapper_args__ = {"polymorphic_identity": "pipeline"}
    task_name = TASK_PIPELINE_RUN

    id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    inputs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    parameters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Files taken from other runs' artifacts by reference: {"name", "run_id", "artifact"}.
    # Only the service creates these (a workflow hands an upstream artifact down); the
    # worker fetches them through the API, which checks the reference against this list.
    artifact_inputs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Set by the worker once it has read the model; NULL on runs made before it reported.
    unused_parameters: Mapped[list[str] | None] = mapped_column(JSON, default=list)

    pipeline: Mapped[Pipeline] = relationship()

    def job_spec(self) -> dict[str, Any]:
        pipeline = self.pipeline
        return {
            "model": pipeline.model,
            "parameters": self.parameters,
            "files": [
                {
                    "name": f.name,
                    "size": f.size,
                    "sha256": f.sha256,
                    "url": url_for("pipeline_worker.file", run_id=self.id, name=f.name),
                }
                for f in pipeline.files
                if f.name not in self._artifact_input_names()
            ]
            + [
                {
                    "name": item["name"],
                    "url": url_for("pipeline_worker.file", run_id=self.id, name=item["name"]),
                }
                for item in self.artifact_inputs
            ],
            "inputs": self.inputs,
        }

    def _artifact_input_names(self) -> set[str]:
        return {item["name"] for item in self.artifact_inputs}

    def artifact_url(self, name: str) -> str:
        return url_for(
            "pipelines.RunArtifact",
            pipeline_id=self.pipeline_id,
            run_id=self.id,
            name=name,
            _external=True,
        )
