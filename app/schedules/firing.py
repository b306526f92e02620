"""The tick: start the runs of the fire times that came due, each exactly once.

Every API process runs it in a thread (``start_scheduler``), and ``flask schedule --loop``
runs it alone; any number may tick at once against one database:

- each due schedule is handled in its own short transaction, its row locked with SKIP
  LOCKED, so two schedulers never handle one schedule at the same time;
- and, whatever a lock would miss, a fire time is claimed by inserting the unique
  ``(schedule_id, fire_time)`` row in the transaction that creates the run: a second
  claim of it inserts nothing and starts nothing. The database, not a process, says that
  a fire time ran.

Fire times older than SCHEDULE_MISFIRE_GRACE_SECONDS were missed (no scheduler ran): by the
schedule's policy they are recorded as skipped, or coalesced into one run started now.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import DomainError
from app.extensions import db
from app.runs import dispatch
from app.schedules.models import FireOutcome, Misfire, Schedule, ScheduleFire
from app.schedules.services import load_run_body, target_of
from app.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 100  # schedules per tick
MAX_FIRES = 100  # on-time fire times of one schedule per tick (the rest: next tick)
MISSED_COUNT_CAP = 100_000
PRUNE_EVERY_SECONDS = 3600.0
PRUNE_BATCH = 1000


def tick(session: Session, settings: Settings, now: datetime | None = None) -> list[str]:
    """Handle every schedule due at ``now``; return the ids of the runs started."""
    now = now or utcnow()
    handled: set[str] = set()
    started: list[str] = []
    while len(handled) < BATCH:
        schedule = session.scalar(
            select(Schedule)
            .where(
                Schedule.enabled.is_(True),
                Schedule.next_fire_at <= now,
                Schedule.id.not_in(handled),
            )
            .order_by(Schedule.next_fire_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if schedule is None:
            break
        handled.add(schedule.id)
        run_ids = fire_due(session, schedule, settings, now)
        session.commit()
        for run_id in run_ids:
            dispatch.publish_new(session, run_id)
        started.extend(run_ids)
    session.commit()
    return started


def fire_due(session: Session, schedule: Schedule, settings: Settings, now: datetime) -> list[str]:
    """Claim and start ``schedule``'s fire times up to ``now``; advance its next fire time."""
    timing = schedule.timing
    moment = schedule.next_fire_at
    assert moment is not None
    cutoff = now - timedelta(seconds=settings.SCHEDULE_MISFIRE_GRACE_SECONDS)
    run_ids: list[str] = []
    if moment < cutoff:
        last_missed = max(moment, timing.at_or_before(cutoff) or moment)
        count = timing.count_between(moment, last_missed, MISSED_COUNT_CAP)
        if schedule.misfire is Misfire.SKIP:
            message = f"{count} fire time(s) from {moment.isoformat()} missed; skipped"
            _claim(session, schedule.id, last_missed, FireOutcome.SKIPPED, count, message)
        else:
            run_ids += _start(session, schedule, last_missed, settings, count)
        moment = timing.after(last_missed)
    fired = 0
    while moment <= now and fired < MAX_FIRES:
        run_ids += _start(session, schedule, moment, settings, 1)
        moment = timing.after(moment)
        fired += 1
    schedule.next_fire_at = moment
    session.flush()
    return run_ids


def _claim(
    session: Session,
    schedule_id: str,
    fire_time: datetime,
    outcome: FireOutcome,
    count: int,
    message: str | None = None,
) -> int | None:
    """Insert the fire time's row; None if it exists (another scheduler handled it)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ScheduleFire.__table__
    statement = (
        insert(table)
        .values(
            schedule_id=schedule_id,
            fire_time=fire_time,
            outcome=outcome.value,
            fire_count=count,
            message=message,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"])
        .returning(table.c.id)
    )
    return session.execute(statement).scalar()


def _start(
    session: Session, schedule: Schedule, fire_time: datetime, settings: Settings, count: int
) -> list[str]:
    """Claim ``fire_time`` and start the target's run in the same transaction."""
    message = f"{count} missed fire times coalesced into this run" if count > 1 else None
    fire_id = _claim(session, schedule.id, fire_time, FireOutcome.STARTED, count, message)
    if fire_id is None:
        return []
    fire = session.get_one(ScheduleFire, fire_id)
    try:
        with session.begin_nested():
            target = target_of(schedule.target_type)
            body = load_run_body(target, schedule.run_body)
            run = target.start(session, schedule.target_id, body, settings)
            run.started_by = {"schedule_id": schedule.id, "fire_time": fire_time.isoformat()}
            session.flush()
    except DomainError as error:
        fire.outcome, fire.message = FireOutcome.FAILED, error.message
        log.warning("Schedule %s could not start at %s: %s", schedule.id, fire_time, error)
        return []
    except Exception:  # noqa: BLE001 - a bug must not stop the schedule: record, go on
        log.exception("Schedule %s failed at %s", schedule.id, fire_time)
        fire.outcome = FireOutcome.FAILED
        fire.message = "Internal error while starting the run (see the server log)"
        return []
    fire.run_id = run.id
    return [run.id]


def prune_fires(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Delete the records of fire times older than SCHEDULE_FIRES_KEEP_DAYS; return how many.

    Safe for exactly-once: a schedule's next fire time only moves forward (an edit
    recomputes it from now), so no scheduler claims a fire time that old again.
    """
    keep = timedelta(days=max(1, settings.SCHEDULE_FIRES_KEEP_DAYS))
    old = select(ScheduleFire.id).where(ScheduleFire.fire_time < (now or utcnow()) - keep)
    deleted = 0
    while True:  # in batches: the first prune of a long history is no long transaction
        batch = session.scalars(old.limit(PRUNE_BATCH)).all()
        if batch:
            session.execute(
                delete(ScheduleFire).where(ScheduleFire.id.in_(batch)),
                execution_options={"synchronize_session": False},
            )
        session.commit()
        deleted += len(batch)
        if len(batch) < PRUNE_BATCH:
            return deleted


def start_scheduler(app: Flask, stop: threading.Event | None = None) -> threading.Thread:
    """Tick every SCHEDULE_TICK_SECONDS in a daemon thread until ``stop`` is set; prune
    old fire records once an hour."""
    settings: Settings = app.config["SETTINGS"]
    stop = stop or threading.Event()

    def loop() -> None:
        next_prune = 0.0
        while not stop.wait(settings.SCHEDULE_TICK_SECONDS):
            with app.app_context():
                try:
                    tick(db.session, settings)
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                        prune_fires(db.session, settings)
                except Exception:  # noqa: BLE001 - keep ticking; the next tick retries
                    log.exception("Schedule tick failed")
                    db.session.rollback()
                finally:
                    db.session.remove()

    thread = threading.Thread(target=loop, name="scheduler", daemon=True)
    thread.start()
    return thread
