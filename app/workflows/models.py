"""Tables of the workflows domain: definitions, their runs, and each node instance."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.runs.models import Run, new_id
from app.timeutil import utcnow
from app.types import UTCDateTime


class Workflow(db.Model):
    """A DAG of pipeline nodes, stored whole as the validated document the client sent."""

    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    fail_fast: Mapped[bool] = mapped_column(Boolean, default=False)
    nodes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    uses: Mapped[list[WorkflowPipeline]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class WorkflowPipeline(db.Model):
    """Which pipelines a workflow's current definition uses (so a delete can be refused)."""

    __tablename__ = "workflow_pipelines"

    workflow_id: Mapped[str] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class WorkflowRun(Run):
    """One run of a workflow. It has no worker: its node runs drive it (app/runs/children)."""

    __tablename__ = "workflow_runs"
    __mapper_args__ = {"polymorphic_identity": "workflow"}

    id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    # The DAG as it was when the run started: editing the workflow never changes a run.
    # Deferred: a node ending reads the run's row but takes the DAG from a per-process
    # cache (advance.graph_of), not from a 1,000-node JSON document each time.
    dag: Mapped[list[dict[str, Any]]] = mapped_column(JSON, deferred=True)
    fail_fast: Mapped[bool] = mapped_column(Boolean, default=False)
    node_parameters: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    node_inputs: Mapped[dict[str, list[dict[str, str]]]] = mapped_column(JSON, default=dict)
    retry_of: Mapped[str | None] = mapped_column(String(36))

    node_runs: Mapped[list[WorkflowNodeRun]] = relationship(
        order_by="WorkflowNodeRun.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="WorkflowNodeRun.workflow_run_id",
    )

    # Not columns: the node view and live progress, set by queries.with_nodes for a response.
    nodes = None
    live_progress = None

    def job_spec(self) -> dict[str, Any]:
        raise NotImplementedError("A workflow run has no worker of its own")

    def artifact_url(self, name: str) -> str:
        return url_for(
            "workflows.RunArtifact",
            workflow_id=self.workflow_id,
            run_id=self.id,
            name=name,
            _external=True,
        )


class NodeStatus(str, enum.Enum):
    """Where one node instance stands. STARTED has a pipeline run; the others never will,
    except WAITING, which may still get one."""

    WAITING = "WAITING"  # its upstream nodes have not all ended
    STARTED = "STARTED"  # its pipeline run exists and has not ended
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"  # an upstream node did not succeed (trigger all_success)

    @property
    def is_final(self) -> bool:
        return self not in (NodeStatus.WAITING, NodeStatus.STARTED)


class WorkflowNodeRun(db.Model):
    """One instance of a node in a workflow run (a sweep node has one per combination)."""

    __tablename__ = "workflow_node_runs"
    __table_args__ = (Index("ix_workflow_node_runs_run_node", "workflow_run_id", "node"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    node: Mapped[str] = mapped_column(String(100))
    instance: Mapped[int] = mapped_column(Integer, default=0)
    sweep_values: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[NodeStatus] = mapped_column(
        Enum(NodeStatus, native_enum=False, length=20, validate_strings=True),
        default=NodeStatus.WAITING,
    )
    pipeline_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    reused: Mapped[bool] = mapped_column(Boolean, default=False)  # kept by a retry
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    pipeline_run: Mapped[Run | None] = relationship(foreign_keys=[pipeline_run_id])
