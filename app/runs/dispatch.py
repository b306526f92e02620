"""After a commit: start what a run's end made ready, stop what its parent's end orphaned.

Called by every route that can end a run or its parent (a worker's final report, a
client's cancel, a new parent run) right after its commit, so a workflow's next node is
published in milliseconds rather than at the next sweep; the sweeper does the same for
anything a killed process left behind.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.runs import broker
from app.runs.models import Run
from app.runs.services import LIVE_STATES, lock_run, request_cancel
from app.runs.states import RunState


def publish_ready_children(session: Session, parent_id: str) -> int:
    """Publish the parent's READY children that were never sent; return how many."""
    runs = session.scalars(
        select(Run).where(
            Run.parent_run_id == parent_id,
            Run.state == RunState.READY,
            Run.dispatched_at.is_(None),
        )
    ).all()
    sent = 0
    for run in runs:
        if not broker.publish(run):
            break  # broker down: the sweeper publishes them later
        sent += 1
    session.commit()
    return sent


def cancel_children(session: Session, parent_id: str) -> int:
    """Cancel each unfinished child of a parent that ended or is being cancelled."""
    child_ids = session.scalars(
        select(Run.id).where(
            Run.parent_run_id == parent_id,
            Run.state.in_((RunState.READY, *LIVE_STATES)),
        )
    ).all()
    session.commit()
    for child_id in child_ids:
        child = lock_run(session, child_id)
        if not child.state.is_final and child.state is not RunState.CANCELLING:
            request_cancel(session, child)
        session.commit()
    return len(child_ids)


def follow_up(session: Session, run_id: str) -> None:
    """Everything a change of ``run`` may require once committed, for it and its parent."""
    run = session.get(Run, run_id)
    if run is None:
        return
    for parent_id in filter(None, (run.id, run.parent_run_id)):
        parent = session.get(Run, parent_id, populate_existing=True)
        if parent is None:
            continue
        if parent.state.is_final or parent.state is RunState.CANCELLING:
            cancel_children(session, parent.id)
        publish_ready_children(session, parent.id)


def publish_new(session: Session, run_id: str) -> None:
    """Publish a run created outside a request (a schedule's), and what it started."""
    run = session.get(Run, run_id)
    if run is None:
        return
    if run.task_name and run.state is RunState.READY and run.dispatched_at is None:
        if broker.publish(run):  # else the sweeper publishes it when the broker is back
            session.commit()
    follow_up(session, run_id)
