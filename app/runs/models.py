"""Tables shared by every kind of run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.runs.states import ErrorType, RunState
from app.timeutil import utcnow
from app.types import UTCDateTime


def new_id() -> str:
    return str(uuid.uuid4())


_state_enum = Enum(RunState, native_enum=False, length=20, validate_strings=True)


class JobUnavailable(Exception):
    """A run's job cannot be built, e.g. a secret it needs cannot be decrypted any more.

    Its claim ends the run FAILED with this error and refuses the worker: answering 500
    left the run READY for every redelivery, with nobody told why.
    """

    def __init__(self, kind: ErrorType, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.error = (kind, message, details or {})


class Run(db.Model):
    """One execution of some job. Domains subclass it (joined-table inheritance)."""

    __tablename__ = "runs"
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "kind"}
    #: Celery task that executes this kind of run; set by each subclass. Empty for runs
    #: driven by their children (a workflow run): no worker claims those.
    task_name: ClassVar[str] = ""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[RunState] = mapped_column(_state_enum, default=RunState.READY)
    # A run started on behalf of another (a workflow node's pipeline run): when it ends,
    # the parent's kind decides what follows (app/runs/children.py).
    parent_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )

    # What started the run when no client request did, e.g. {"schedule_id", "fire_time"};
    # set by whoever starts it, never read by the machinery.
    started_by: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    timeout_seconds: Mapped[int] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_backoff_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    callback_url: Mapped[str | None] = mapped_column(Text)
    # Outbox: the sweeper publishes the end-of-run callback and stamps this.
    callback_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Attempts and leases: an attempt owns the run while its lease is fresh; every worker
    # write names its attempt, so a superseded attempt's late writes are refused.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    # Names the delivery that claimed the current attempt: a repeat of that same claim (an
    # HTTP retry after a lost response) gets the same attempt back instead of a 409.
    claim_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    progress_percent: Mapped[float | None] = mapped_column(Float)
    progress_message: Mapped[str | None] = mapped_column(Text)
    progress_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    error_type: Mapped[ErrorType | None] = mapped_column(
        Enum(ErrorType, native_enum=False, length=40, validate_strings=True)
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    next_log_seq: Mapped[int] = mapped_column(Integer, default=1)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    states: Mapped[list[RunStateChange]] = relationship(
        order_by="RunStateChange.id", cascade="all, delete-orphan", passive_deletes=True
    )
    artifacts: Mapped[list[RunArtifact]] = relationship(
        order_by="RunArtifact.name",
        cascade="all, delete-orphan",
        passive_deletes=True,
        back_populates="run",
    )

    __table_args__ = (
        # The sweeper's two scans: live attempts by lease, waiting runs by dispatch time.
        Index("ix_runs_state_lease", "state", "lease_expires_at"),
        Index("ix_runs_state_dispatched", "state", "dispatched_at"),
    )

    def job_spec(self) -> dict[str, Any]:
        """What a worker needs to execute this run; each kind of run says its own.

        Raises JobUnavailable when the job cannot be built (the claim then fails the run).
        """
        raise NotImplementedError

    def artifact_url(self, name: str) -> str:
        """The API URL that downloads artifact ``name``; each kind has its own route."""
        raise NotImplementedError

    def task_queue(self) -> str | None:
        """The Celery queue of this run's task; None: the default queue (CELERY_TASK_QUEUE)."""
        return None

    @property
    def error(self) -> dict[str, Any] | None:
        if self.error_type is None:
            return None
        return {
            "type": self.error_type.value,
            "message": self.error_message or "",
            "details": self.error_details or {},
        }

    @property
    def progress(self) -> dict[str, Any] | None:
        if self.progress_updated_at is None:
            return None
        return {
            "percent": self.progress_percent,
            "message": self.progress_message,
            "updated_at": self.progress_updated_at,
        }


class RunStateChange(db.Model):
    """Append-only history: one row per transition, never updated."""

    __tablename__ = "run_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[RunState | None] = mapped_column(_state_enum)
    state: Mapped[RunState] = mapped_column(_state_enum)
    attempt: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunLogLine(db.Model):
    """Console output, numbered per run so a client can read on with ``after=<seq>``."""

    __tablename__ = "run_log_lines"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    attempt: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunArtifact(db.Model):
    """An output file of a run; the bytes live in the object store under ``storage_key``."""

    __tablename__ = "run_artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(700))
    attempt: Mapped[int] = mapped_column(Integer)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    run: Mapped[Run] = relationship(back_populates="artifacts")

    @property
    def url(self) -> str:
        return self.run.artifact_url(self.name)


class IdempotencyRecord(db.Model):
    """The first response to a POST sent with an ``Idempotency-Key``, replayed on repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "key", "endpoint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[Any | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
