"""Publishing runs to the Celery broker from the API side.

The API never imports worker code: it sends a task by name. A failed publish is not an
error for the client: the run is stored READY with ``dispatched_at`` empty and the sweeper
publishes it once the broker answers again, so no run is left READY with nothing to
start it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from flask import Flask, current_app
from sqlalchemy.orm import Session

from app.celery_config import celery_settings
from app.config import Settings
from app.runs.models import Run
from app.runs.services import mark_dispatched

log = logging.getLogger(__name__)


def init_app(app: Flask, settings: Settings) -> None:
    client = Celery("jobs-api")
    client.conf.update(celery_settings(settings))
    app.extensions["celery_client"] = client


def send(task_name: str, args: list[Any], queue: str | None = None) -> bool:
    """Publish one task message (to ``queue``, else the default queue); return False (and
    log) if the broker cannot take it."""
    client: Celery = current_app.extensions["celery_client"]
    try:
        client.send_task(
            task_name,
            args=args,
            **({"queue": queue} if queue else {}),
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure means "not sent yet"
        log.warning("Broker unavailable, %s left for the sweeper: %s", task_name, exc)
        return False
    return True


def publish(run: Run) -> bool:
    """Send ``run``'s task; on success stamp ``dispatched_at``. Return whether it was sent."""
    if not send(run.task_name, [run.id], run.task_queue()):
        return False
    mark_dispatched(run)
    return True


def commit_and_publish(session: Session, run: Run) -> None:
    """Store a new run, then send its task (a task never names a run not yet committed);
    ``dispatched_at`` is committed once the broker took it, else the sweeper sends it."""
    session.commit()
    if publish(run):
        session.commit()
