"""Writes of the schedules domain. Functions take the session, flush, never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, ValidationFailed
from app.schedules import queries
from app.schedules.models import Schedule
from app.schedules.targets import ScheduleTarget, target_for, target_types
from app.schedules.timing import interval_anchor
from app.timeutil import utcnow

TIMING_FIELDS = ("cron", "timezone", "interval_seconds")


def lock_schedule(session: Session, schedule_id: str) -> Schedule:
    """Load a schedule ``FOR UPDATE``: an edit waits for a tick handling it, and a tick
    skips a schedule being edited (SKIP LOCKED), so neither sees half of the other."""
    schedule = session.scalar(
        select(Schedule)
        .where(Schedule.id == schedule_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if schedule is None:
        raise NotFound("Schedule not found", {"schedule_id": [f"No schedule {schedule_id}"]})
    return schedule


def target_of(type_: str) -> ScheduleTarget:
    target = target_for(type_)
    if target is None:
        known = ", ".join(target_types())
        raise ValidationFailed(
            f"Unknown target type {type_!r}; one of {known}",
            {"target": {"type": [f"Must be one of: {known}"]}},
        )
    return target


def load_run_body(target: ScheduleTarget, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as the target's create-run request would load it; 422 naming the field."""
    try:
        return target.run_schema().load(body)
    except ValidationError as error:
        raise ValidationFailed(
            f"Invalid target.run: {error.messages}", {"target": {"run": error.messages}}
        ) from None


def _check_target(session: Session, data: dict[str, Any]) -> None:
    target = target_of(data["target"]["type"])
    target.check(session, data["target"]["id"], load_run_body(target, data["target"]["run"]))


def _apply(schedule: Schedule, data: dict[str, Any]) -> None:
    for field in ("name", "description", *TIMING_FIELDS, "enabled", "misfire"):
        setattr(schedule, field, data[field])
    schedule.target_type = data["target"]["type"]
    schedule.target_id = data["target"]["id"]
    schedule.run_body = data["target"]["run"]


def _restart_timing(schedule: Schedule, now: datetime) -> None:
    """Fire times count from ``now``: on creation, a timing edit, or a resume."""
    if schedule.interval_seconds is not None:
        schedule.interval_anchor = interval_anchor(now, schedule.interval_seconds)
    else:
        schedule.interval_anchor = None
    schedule.next_fire_at = schedule.timing.after(now) if schedule.enabled else None


def create_schedule(session: Session, data: dict[str, Any]) -> Schedule:
    _check_target(session, data)
    schedule = Schedule()
    _apply(schedule, data)
    _restart_timing(schedule, utcnow())
    session.add(schedule)
    session.flush()
    return schedule


def update_schedule(session: Session, schedule: Schedule, data: dict[str, Any]) -> Schedule:
    """Replace the definition. A new timing or a resume counts fire times from now (those
    that passed while paused never run); other edits keep the next fire time."""
    _check_target(session, data)
    retimed = any(getattr(schedule, f) != data[f] for f in TIMING_FIELDS)
    resumed = data["enabled"] and not schedule.enabled
    _apply(schedule, data)
    if retimed or resumed or not schedule.enabled:
        _restart_timing(schedule, utcnow())
    session.flush()
    return schedule


def delete_schedule(session: Session, schedule: Schedule) -> None:
    """Delete a schedule and its fire records; the runs it started stay with their targets."""
    session.delete(schedule)
    session.flush()


def refuse_if_scheduled(session: Session, target: ScheduleTarget, target_id: str) -> None:
    """Called by a domain before deleting a target: 409 naming the schedules that start it.

    Refused rather than deleting the schedules: a schedule is configuration someone relies
    on (a nightly study), and silently dropping it as a side effect would stop it unseen.
    """
    users = queries.schedules_targeting(session, target.type, target_id)
    if users:
        names = ", ".join(f"{s.name} ({s.id})" for s in users)
        raise Conflict(
            f"The {target.type} is started by schedule(s) {names}; change or delete them first",
            {f"{target.type}_id": [f"Scheduled by {names}"]},
            target.in_use_code,
        )
