"""Writes of the run machinery. Each function takes the session, flushes, never commits:
the caller (a route, the sweeper) owns the transaction.

``transition`` is the only code that assigns ``Run.state``. Callers first take the row
lock with ``lock_run`` so that two writers (a worker reporting, the sweeper expiring a
lease, a client cancelling) serialize on the run and the second sees the first's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from app.errors import Conflict, ErrorCode, NotFound
from app.runs import children
from app.runs.models import Run, RunArtifact, RunLogLine, RunStateChange, new_id
from app.runs.states import FINAL_STATES, RETRYABLE_ERRORS, ErrorType, RunState
from app.timeutil import utcnow

LIVE_STATES = (RunState.RUNNING, RunState.CANCELLING)


def lock_run(session: Session, run_id: str, model: type[Run] = Run) -> Run:
    """Load a run ``FOR UPDATE``; raise NotFound if there is none."""
    run = session.scalar(
        select(model)
        .where(model.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"No run {run_id}"]})
    return run


def transition(
    session: Session,
    run: Run,
    target: RunState,
    *,
    reason: str | None = None,
    error: tuple[ErrorType, str, dict[str, Any] | None] | None = None,
    now: datetime | None = None,
) -> None:
    """Move ``run`` to ``target``, recording the change; refuse transitions not in the table."""
    if not run.state.can_become(target):
        raise Conflict(
            f"Run is {run.state.value} and cannot become {target.value}",
            {"state": [f"{run.state.value} -> {target.value} is not allowed"]},
            ErrorCode.INVALID_TRANSITION,
        )
    now = now or utcnow()
    session.add(
        RunStateChange(
            run_id=run.id,
            from_state=run.state,
            state=target,
            attempt=run.attempt,
            reason=reason,
            at=now,
        )
    )
    run.state = target
    if target is RunState.RUNNING and run.started_at is None:
        run.started_at = now
    if target.is_final:
        run.finished_at = now
    if target.is_final or target is RunState.READY:
        run.lease_expires_at = None
        run.worker_id = None
    if error is not None:
        run.error_type, run.error_message, run.error_details = error[0], error[1], error[2]
    session.flush()
    if target.is_final and run.parent_run_id is not None:
        _tell_parent(session, run)


def _tell_parent(session: Session, child: Run) -> None:
    """The child ended: its parent's kind decides what follows, in this transaction."""
    parent = session.scalar(
        select(Run)
        .where(Run.id == child.parent_run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    policy = children.policy_for(parent.kind) if parent is not None else None
    if parent is not None and policy is not None:
        policy.child_ended(session, parent, child)


def delete_runs(session: Session, run_ids: Select, owner: str, field: str) -> list[str]:
    """Delete the runs ``run_ids`` selects, with their history, logs and artifact rows;
    refuse (RUN_NOT_FINISHED) while one is unfinished. Return the deleted ids, whose
    stored artifacts the caller deletes after the commit."""
    ids = list(session.scalars(run_ids))
    unfinished = session.scalar(
        select(Run.id).where(Run.id.in_(ids), Run.state.not_in(FINAL_STATES)).limit(1)
    )
    if unfinished is not None:
        raise Conflict(
            f"{owner} has unfinished runs; cancel them or wait for them to end",
            {field: ["Has runs that are READY, RUNNING or CANCELLING"]},
            ErrorCode.RUN_NOT_FINISHED,
        )
    if ids:
        session.execute(delete(Run).where(Run.id.in_(ids)))
    return ids


def add_new(session: Session, run: Run) -> None:
    """Add a new READY run and its first history row (nothing -> READY) without flushing,
    so that a caller creating many (a workflow starting 1,000 nodes) writes them in one
    batch; the next flush inserts them (runs first: the unit of work orders the tables)."""
    run.id = run.id or new_id()
    run.state = run.state or RunState.READY
    session.add(run)
    session.add(RunStateChange(run_id=run.id, from_state=None, state=run.state, attempt=0))


def request_cancel(session: Session, run: Run) -> None:
    """Cancel: a READY run ends now; a live one goes CANCELLING until its worker stops it."""
    if run.state.is_final:
        raise Conflict(
            f"Run already ended {run.state.value}; there is nothing to cancel",
            {"state": [f"Run is {run.state.value}"]},
            ErrorCode.RUN_ENDED,
        )
    if run.state is RunState.CANCELLING:
        return
    run.cancel_requested_at = utcnow()
    if run.state is RunState.READY:
        transition(
            session,
            run,
            RunState.CANCELLED,
            reason="cancelled before start",
            error=(ErrorType.CANCELLED, "Cancelled before it started", None),
        )
        return
    transition(session, run, RunState.CANCELLING, reason="cancel requested")
    policy = children.policy_for(run.kind)
    if policy is not None:  # a parent: it ends once its children have stopped
        policy.reconcile(session, run)


def write_log(session: Session, run: Run, lines: Sequence[str]) -> None:
    """Append lines written by the service itself (a workflow's own log), not a worker."""
    now = utcnow()
    session.add_all(
        RunLogLine(run_id=run.id, seq=run.next_log_seq + i, attempt=run.attempt, line=line, at=now)
        for i, line in enumerate(lines)
    )
    run.next_log_seq += len(lines)
    session.flush()


def claim(session: Session, run: Run, worker_id: str, claim_token: str, lease_seconds: int) -> None:
    """Give the run to a worker as a new attempt; only a READY, due run can be claimed.

    Prevents a run executing twice: a duplicate or redelivered message finds the run no
    longer READY and is refused. The same claim repeated (same ``claim_token``: the
    worker's HTTP client retrying after a lost response) gets its attempt back, with a
    fresh lease, instead of a 409 that would strand the run RUNNING.
    """
    now = utcnow()
    if run.state in LIVE_STATES and run.claim_token == claim_token:
        run.lease_expires_at = now + timedelta(seconds=lease_seconds)
        session.flush()
        return
    if run.state is not RunState.READY:
        raise Conflict(
            f"Run is {run.state.value}, not READY",
            {"state": [f"Run is {run.state.value}"]},
            ErrorCode.RUN_NOT_CLAIMABLE,
        )
    if run.not_before is not None and run.not_before > now:
        raise Conflict(
            "Run is waiting for its retry back-off",
            {"not_before": [str(run.not_before)]},
            ErrorCode.RUN_NOT_CLAIMABLE,
        )
    run.attempt += 1
    run.worker_id = worker_id
    run.claim_token = claim_token
    run.attempt_started_at = now
    run.deadline_at = now + timedelta(seconds=run.timeout_seconds)
    run.lease_expires_at = now + timedelta(seconds=lease_seconds)
    run.error_type = run.error_message = run.error_details = None
    transition(session, run, RunState.RUNNING, reason=f"claimed by {worker_id}", now=now)


def check_attempt(run: Run, attempt: int) -> None:
    """Refuse a worker write unless it comes from the run's current, live attempt."""
    if run.attempt != attempt or run.state not in LIVE_STATES:
        raise Conflict(
            "This attempt no longer owns the run",
            {
                "attempt": [
                    f"Run is {run.state.value} at attempt {run.attempt}; attempt {attempt} is stale"
                ]
            },
            ErrorCode.STALE_ATTEMPT,
        )


def renew_lease(run: Run, attempt: int, lease_seconds: int) -> None:
    check_attempt(run, attempt)
    run.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)


def record_progress(
    session: Session,
    run: Run,
    attempt: int,
    percent: float | None,
    message: str | None,
    lease_seconds: int,
) -> None:
    renew_lease(run, attempt, lease_seconds)
    run.progress_percent = percent
    run.progress_message = message
    run.progress_updated_at = utcnow()
    session.flush()


def append_logs(
    session: Session, run: Run, attempt: int, first_seq: int, lines: Sequence[str]
) -> int:
    """Append lines numbered from ``first_seq``; lines already stored are skipped.

    Makes a resent batch (the worker retrying after a lost response) harmless, and a gap
    (lines lost in between) an error the worker hears about.
    """
    check_attempt(run, attempt)
    if first_seq > run.next_log_seq:
        raise Conflict(
            "Log lines would leave a gap",
            {"first_seq": [f"Next expected sequence number is {run.next_log_seq}"]},
            ErrorCode.LOG_GAP,
        )
    now = utcnow()
    skip = run.next_log_seq - first_seq
    new_lines = list(lines)[skip:]
    session.add_all(
        RunLogLine(run_id=run.id, seq=run.next_log_seq + i, attempt=attempt, line=line, at=now)
        for i, line in enumerate(new_lines)
    )
    run.next_log_seq += len(new_lines)
    session.flush()
    return run.next_log_seq


def add_artifact(
    session: Session,
    run: Run,
    attempt: int,
    *,
    name: str,
    size: int,
    sha256: str,
    storage_key: str,
    partial: bool,
) -> RunArtifact:
    """Record an uploaded artifact; a later attempt's file of the same name replaces it."""
    check_attempt(run, attempt)
    artifact = session.scalar(
        select(RunArtifact).where(RunArtifact.run_id == run.id, RunArtifact.name == name)
    )
    if artifact is None:
        artifact = RunArtifact(run_id=run.id, name=name)
        session.add(artifact)
    artifact.size, artifact.sha256, artifact.storage_key = size, sha256, storage_key
    artifact.attempt, artifact.partial, artifact.created_at = attempt, partial, utcnow()
    session.flush()
    return artifact


def finish_attempt(
    session: Session,
    run: Run,
    attempt: int,
    target: RunState,
    error: tuple[ErrorType, str, dict[str, Any] | None] | None,
) -> None:
    """A worker reports how its attempt ended; infrastructure failures may be retried."""
    check_attempt(run, attempt)
    if target not in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED):
        raise Conflict(
            "A worker can only end an attempt",
            {"state": ["Must be a final state"]},
            ErrorCode.INVALID_TRANSITION,
        )
    if target is RunState.FAILED and error and error[0] in RETRYABLE_ERRORS:
        if run.state is RunState.RUNNING and retry_or_fail(session, run, error):
            return
        transition(session, run, target, reason=error[1], error=error)
        return
    if target is RunState.CANCELLED and error is None:
        error = (ErrorType.CANCELLED, "Cancelled while running", None)
    reason = error[1] if error else None
    transition(session, run, target, reason=reason, error=error)


def retry_or_fail(
    session: Session, run: Run, error: tuple[ErrorType, str, dict[str, Any] | None]
) -> bool:
    """Put a failed attempt back to READY if the policy allows; return whether it did."""
    if run.attempt > run.max_retries:
        return False
    delay = run.retry_backoff_seconds * (2 ** (run.attempt - 1))
    run.not_before = utcnow() + timedelta(seconds=delay)
    run.dispatched_at = None
    transition(
        session,
        run,
        RunState.READY,
        reason=f"retry after {error[0].value}: {error[1]} (attempt {run.attempt} of "
        f"{run.max_retries + 1})",
    )
    return True


def expire_lease(session: Session, run: Run) -> None:
    """The attempt's worker stopped renewing its lease: it died, hung or lost the network."""
    message = f"Worker {run.worker_id} stopped reporting during attempt {run.attempt}"
    if run.state is RunState.CANCELLING:
        transition(
            session,
            run,
            RunState.CANCELLED,
            reason=message,
            error=(ErrorType.CANCELLED, "Cancelled; the worker was lost while stopping", None),
        )
        return
    error = (ErrorType.WORKER_LOST, message, {"worker_id": run.worker_id, "attempt": run.attempt})
    if not retry_or_fail(session, run, error):
        transition(session, run, RunState.FAILED, reason=message, error=error)


def time_out(session: Session, run: Run) -> None:
    """The attempt overran its timeout and its worker did not end it: fail it here."""
    message = f"Run exceeded its timeout of {run.timeout_seconds} s"
    transition(
        session,
        run,
        RunState.FAILED,
        reason=message,
        error=(ErrorType.TIMEOUT, message, {"timeout_seconds": run.timeout_seconds}),
    )


def mark_dispatched(run: Run) -> None:
    run.dispatched_at = utcnow()
