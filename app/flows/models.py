"""Tables of the flows domain: data stores, flow inputs (immutable) and flow runs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.celery_config import TASK_FLOW_RUN
from app.extensions import db
from app.runs.models import Run, new_id
from app.timeutil import utcnow
from app.types import UTCDateTime


class StoreType(str, enum.Enum):
    RELATIONAL = "RELATIONAL"
    COLUMNAR = "COLUMNAR"
    FILE = "FILE"


class Engine(str, enum.Enum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    SQLITE = "sqlite"
    DUCKDB = "duckdb"
    CSV = "csv"


#: Which engines each store type takes.
ENGINES_OF_TYPE = {
    StoreType.RELATIONAL: (Engine.POSTGRESQL, Engine.MYSQL, Engine.SQLITE),
    StoreType.COLUMNAR: (Engine.DUCKDB,),
    StoreType.FILE: (Engine.CSV,),
}
#: Engines reached over the network (host, port, user, password, database).
SERVER_ENGINES = (Engine.POSTGRESQL, Engine.MYSQL)


class DataStore(db.Model):
    """Where a flow reads or writes: a database server, a database file or a CSV folder."""

    __tablename__ = "data_stores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[StoreType] = mapped_column(Enum(StoreType, native_enum=False, length=20))
    engine: Mapped[Engine] = mapped_column(
        Enum(Engine, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    user: Mapped[str | None] = mapped_column(String(200))
    # Fernet token (app/flows/secrets.py); never returned, never logged.
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    database: Mapped[str | None] = mapped_column(String(200))
    path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)


class FlowInput(db.Model):
    """A flow's definition: sources, target, transforms, checks. Immutable once created."""

    __tablename__ = "flow_inputs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    target_store_id: Mapped[str] = mapped_column(ForeignKey("data_stores.id"), index=True)
    transforms: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Derived from the SQL at creation: {transform: [tables it reads]}, and the run order.
    graph: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    order: Mapped[list[str]] = mapped_column(JSON)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class FlowRun(Run):
    """One run of a flow input; ``steps`` is the per-step view its worker reports."""

    __tablename__ = "flow_runs"
    __mapper_args__ = {"polymorphic_identity": "flow"}
    task_name = TASK_FLOW_RUN

    id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    flow_input_id: Mapped[str] = mapped_column(ForeignKey("flow_inputs.id"), index=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    flow_input: Mapped[FlowInput] = relationship()

    def job_spec(self) -> dict[str, Any]:
        from app.flows.jobspec import job_spec  # decrypts secrets: only for a claim

        return job_spec(self)

    def artifact_url(self, name: str) -> str:
        return url_for("flows.RunArtifact", run_id=self.id, name=name, _external=True)


class FlowInputStore(db.Model):
    """Which stores a flow input uses, so a store in use cannot be deleted."""

    __tablename__ = "flow_input_stores"

    flow_input_id: Mapped[str] = mapped_column(
        ForeignKey("flow_inputs.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
