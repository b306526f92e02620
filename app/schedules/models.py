"""Tables of the schedules domain: schedules, and one row per fire time handled."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.runs.models import new_id
from app.schedules.timing import Timing
from app.timeutil import utcnow
from app.types import UTCDateTime

NEXT_FIRE_TIMES = 5


class Misfire(str, enum.Enum):
    """What to do with fire times missed while no scheduler ran (older than the grace)."""

    SKIP = "skip"  # record them as skipped; the next fire time runs as usual
    RUN_ONCE = "run_once"  # start one run for all of them, now


class FireOutcome(str, enum.Enum):
    STARTED = "STARTED"  # a run was created
    FAILED = "FAILED"  # the target could not start (``message`` says why)
    SKIPPED = "SKIPPED"  # missed fire times dropped by the ``skip`` policy


class Schedule(db.Model):
    __tablename__ = "schedules"
    __table_args__ = (
        # The tick's one scan: enabled schedules by their next fire time.
        Index("ix_schedules_enabled_next_fire_at", "enabled", "next_fire_at"),
        Index("ix_schedules_target", "target_type", "target_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    # An interval's first fire time; fire times are anchor + k * interval_seconds.
    interval_anchor: Mapped[datetime | None] = mapped_column(UTCDateTime())
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(36))
    # The create-run body as the client sent it; loaded again (validated) at each fire.
    run_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    misfire: Mapped[Misfire] = mapped_column(
        Enum(Misfire, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=Misfire.RUN_ONCE,
    )
    # The first fire time not yet handled; None while paused.
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def timing(self) -> Timing:
        return Timing(self.cron, self.timezone, self.interval_seconds, self.interval_anchor)

    @property
    def timing_description(self) -> str:
        return self.timing.explain()

    @property
    def next_fire_times(self) -> list[datetime]:
        """The fire times to come, from the next one not yet handled; none while paused."""
        if self.next_fire_at is None:
            return []
        later = self.timing.upcoming(max(self.next_fire_at, utcnow()), NEXT_FIRE_TIMES - 1)
        return [self.next_fire_at, *later]

    @property
    def target(self) -> dict[str, Any]:
        return {"type": self.target_type, "id": self.target_id, "run": self.run_body}


class ScheduleFire(db.Model):
    """One fire time of a schedule, handled once: the unique (schedule, fire time) row is
    inserted in the transaction that creates the run, so however many schedulers tick, a
    fire time starts at most one run."""

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_time: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[FireOutcome] = mapped_column(
        Enum(FireOutcome, native_enum=False, length=20, validate_strings=True)
    )
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    # How many fire times this row stands for: more than 1 for missed ones coalesced.
    fire_count: Mapped[int] = mapped_column(Integer, default=1)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
