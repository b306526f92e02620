"""End-of-run callbacks: an outbox the sweeper drains, delivered by a worker task.

The request thread never makes the outbound call (the predecessor POSTed synchronously
inside the request, unsigned, never retried). A run that ends with a ``callback_url`` is
picked up by the sweeper, which publishes ``jobs.deliver_callback`` with the JSON body
and its HMAC-SHA256 signature (header ``X-Signature-256: sha256=<hex>``, keyed with
CALLBACK_SIGNING_SECRET); the worker task POSTs it with retries and back-off.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.celery_config import TASK_DELIVER_CALLBACK
from app.runs import broker
from app.runs.models import Run
from app.runs.states import FINAL_STATES
from app.timeutil import utcnow

SIGNATURE_HEADER = "X-Signature-256"


def callback_body(run: Run) -> str:
    return json.dumps(
        {
            "run_id": run.id,
            "kind": run.kind,
            "state": run.state.value,
            "error": run.error,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        sort_keys=True,
    )


def sign(body: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def publish_callbacks(session: Session, secret: str, batch: int = 100) -> int:
    """Publish the callback of every ended run that has one pending; return how many."""
    runs = session.scalars(
        select(Run)
        .where(
            Run.state.in_(FINAL_STATES),
            Run.callback_url.is_not(None),
            Run.callback_published_at.is_(None),
        )
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    published = 0
    for run in runs:
        body = callback_body(run)
        headers = {SIGNATURE_HEADER: sign(body, secret)} if secret else {}
        if not broker.send(TASK_DELIVER_CALLBACK, [run.callback_url, body, headers]):
            break  # broker down: the next sweep retries
        run.callback_published_at = utcnow()
        published += 1
    session.commit()
    return published
