"""The sweeper: finds runs whose truth is not being told and tells it.

- A live attempt whose lease expired (its worker died, was OOM-killed, lost the network)
  is retried or ended FAILED with WORKER_LOST, by the run's retry policy.
- A live attempt past its timeout plus a grace period (its worker did not stop it) ends
  FAILED with TIMEOUT.
- An ended run with a ``callback_url`` gets its callback published (see callbacks.py).
- Idempotency records older than IDEMPOTENCY_TTL_SECONDS are deleted.
- A parent run (a workflow) with no unfinished child is reconciled by its kind's policy,
  and the unfinished children of a parent that ended or is being cancelled are cancelled
  (app/runs/children.py, dispatch.py): what a killed process left undecided is decided.
- A READY run that is due and was never published, or was published long ago and never
  claimed (the broker lost the message, e.g. Redis restarted), is published again. A
  duplicate message is harmless: only one claim of a READY run can succeed.

Each run is handled in its own short transaction, locked with SKIP LOCKED, so any number
of API processes can sweep at once without blocking each other or a worker's report.

Leases are only expired once this sweeper has been able to reach the database for a whole
lease period (``LeaseGrace``): while the API or its database was down, no heartbeat could
arrive, and the leases that ran out meanwhile belong to workers that had no chance to
renew them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased

from app.config import Settings
from app.extensions import db
from app.runs import broker, children, dispatch, services
from app.runs.callbacks import publish_callbacks
from app.runs.idempotency import purge_expired
from app.runs.models import Run
from app.runs.services import LIVE_STATES
from app.runs.states import RunState
from app.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 100


def _locked(session: Session, query):  # type: ignore[no-untyped-def]
    return session.scalars(query.limit(BATCH).with_for_update(skip_locked=True)).all()


def expire_leases(session: Session) -> int:
    now = utcnow()
    runs = _locked(
        session,
        select(Run).where(Run.state.in_(LIVE_STATES), Run.lease_expires_at < now),
    )
    for run in runs:
        log.warning("Lease of run %s attempt %s expired", run.id, run.attempt)
        services.expire_lease(session, run)
    session.commit()
    return len(runs)


def enforce_timeouts(session: Session, settings: Settings) -> int:
    cutoff = utcnow() - timedelta(seconds=settings.TIMEOUT_GRACE_SECONDS)
    overdue = _locked(
        session, select(Run).where(Run.state.in_(LIVE_STATES), Run.deadline_at < cutoff)
    )
    for run in overdue:
        services.time_out(session, run)
    session.commit()
    return len(overdue)


def publish_waiting(session: Session, settings: Settings) -> int:
    now = utcnow()
    stale = now - timedelta(seconds=settings.REDISPATCH_AFTER_SECONDS)
    runs = _locked(
        session,
        select(Run).where(
            Run.state == RunState.READY,
            Run.kind.not_in(children.parent_kinds()),  # no worker runs a parent
            or_(Run.dispatched_at.is_(None), Run.dispatched_at < stale),
            or_(Run.not_before.is_(None), Run.not_before <= now),
        ),
    )
    published = 0
    for run in runs:
        if not broker.publish(run):
            break  # the broker is down: try again next sweep
        published += 1
    session.commit()
    return published


def _unfinished_child_of(parent: type[Run]):  # type: ignore[no-untyped-def]
    child = aliased(Run)
    return exists().where(
        child.parent_run_id == parent.id, child.state.in_((RunState.READY, *LIVE_STATES))
    )


def reconcile_parents(session: Session) -> int:
    """Let each live parent with no unfinished child decide what its children left open."""
    kinds = children.parent_kinds()
    parents = _locked(
        session,
        select(Run).where(
            Run.kind.in_(kinds), Run.state.in_(LIVE_STATES), ~_unfinished_child_of(Run)
        ),
    )
    for parent in parents:
        policy = children.policy_for(parent.kind)
        if policy is not None:
            policy.reconcile(session, parent)
    session.commit()
    return len(parents)


def stop_orphans(session: Session) -> int:
    """Cancel the unfinished children of parents that ended or are being cancelled."""
    stopping = (RunState.CANCELLING, RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED)
    parent_ids = session.scalars(
        select(Run.id)
        .where(Run.kind.in_(children.parent_kinds()), Run.state.in_(stopping))
        .where(_unfinished_child_of(Run))
        .limit(BATCH)
    ).all()
    session.commit()
    return sum(dispatch.cancel_children(session, parent_id) for parent_id in parent_ids)


def sweep_once(session: Session, settings: Settings, expire: bool = True) -> dict[str, int]:
    """Run every check once; return how many runs each one changed. ``expire=False``
    leaves expired leases alone (see LeaseGrace)."""
    return {
        "expired": expire_leases(session) if expire else 0,
        "timed_out": enforce_timeouts(session, settings),
        "orphans_stopped": stop_orphans(session),
        "parents_reconciled": reconcile_parents(session),
        "published": publish_waiting(session, settings),
        "callbacks": publish_callbacks(session, settings.CALLBACK_SIGNING_SECRET),
        "idempotency_purged": purge_expired(session, settings.IDEMPOTENCY_TTL_SECONDS),
    }


class LeaseGrace:
    """Whether expired leases may be acted on: only once heartbeats could have arrived for
    a whole lease period. The period starts when the sweeper starts (the API was down, or
    is new) and again after a sweep found the database unavailable (heartbeats failed too).
    Without it, the first sweep after an outage longer than the lease would retry or fail
    the runs of healthy workers whose renewals are still on their way."""

    def __init__(self, lease_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._since = clock()

    def restart(self) -> None:
        self._since = self._clock()

    def over(self) -> bool:
        return self._clock() - self._since >= self.lease_seconds


def sweep_pass(session: Session, settings: Settings, grace: LeaseGrace) -> dict[str, int] | None:
    """One pass of the sweeper's loop: never raises, so the loop goes on."""
    try:
        return sweep_once(session, settings, expire=grace.over())
    except (OperationalError, InterfaceError):
        log.exception("Sweep failed: database unavailable; leases get a new grace period")
        grace.restart()
    except Exception:  # noqa: BLE001 - keep sweeping; the next pass retries
        log.exception("Sweep failed")
    with contextlib.suppress(Exception):  # a dead connection must not end the loop
        session.rollback()
    return None


def start_sweeper(app: Flask, stop: threading.Event | None = None) -> threading.Thread:
    """Sweep every SWEEP_INTERVAL_SECONDS in a daemon thread until ``stop`` is set."""
    settings: Settings = app.config["SETTINGS"]
    stop = stop or threading.Event()
    grace = LeaseGrace(settings.RUN_LEASE_SECONDS)

    def loop() -> None:
        while not stop.wait(settings.SWEEP_INTERVAL_SECONDS):
            with app.app_context():
                try:
                    sweep_pass(db.session, settings, grace)
                finally:
                    db.session.remove()

    thread = threading.Thread(target=loop, name="run-sweeper", daemon=True)
    thread.start()
    return thread
