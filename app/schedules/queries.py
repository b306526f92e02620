"""Reads of the schedules domain. ``get_*`` raise NotFound."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.pagination import paginate
from app.runs.models import Run
from app.schedules.models import Schedule, ScheduleFire
from app.schedules.targets import target_for

RECENT_FIRES = 20


def get_schedule(session: Session, schedule_id: str) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound("Schedule not found", {"schedule_id": [f"No schedule {schedule_id}"]})
    return schedule


def list_schedules(
    session: Session, limit: int, cursor: str | None
) -> tuple[Sequence[Schedule], str | None]:
    return paginate(session, select(Schedule), Schedule.created_at, Schedule.id, limit, cursor)


def schedules_targeting(session: Session, type_: str, target_id: str) -> Sequence[Schedule]:
    return session.scalars(
        select(Schedule)
        .where(Schedule.target_type == type_, Schedule.target_id == target_id)
        .order_by(Schedule.created_at)
    ).all()


def recent_fires(session: Session, schedule: Schedule, limit: int = RECENT_FIRES) -> list[dict]:
    """The latest fire times handled, newest first, with the state of the run each started."""
    rows = session.execute(
        select(ScheduleFire, Run.state)
        .outerjoin(Run, Run.id == ScheduleFire.run_id)
        .where(ScheduleFire.schedule_id == schedule.id)
        .order_by(ScheduleFire.fire_time.desc())
        .limit(limit)
    ).all()
    target = target_for(schedule.target_type)
    return [
        {
            "fire_time": fire.fire_time,
            "outcome": fire.outcome.value,
            "fire_count": fire.fire_count,
            "message": fire.message,
            "run_id": fire.run_id,
            "run_state": state.value if state is not None else None,
            "run_url": target.run_url(schedule.target_id, fire.run_id)
            if target is not None and fire.run_id
            else None,
            "handled_at": fire.created_at,
        }
        for fire, state in rows
    ]
