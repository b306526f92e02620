"""Start the service on the embedded default: one command, no other service needed.

SQLite in ``instance/``, artifacts in ``instance/artifacts``, a file-system Celery broker
in ``instance/broker``, and a Celery worker as a child process. Jobs run asynchronously and
in parallel (WORKER_CONCURRENCY at a time). Every setting can still be overridden from the
environment, e.g. SQLALCHEMY_DATABASE_URI or CELERY_BROKER_URL.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys

from flask_migrate import upgrade
from sqlalchemy import update

from app import create_app
from app.auth.models import ApplicationKey, Permission
from app.auth.services import create_application_key
from app.config import Settings
from app.extensions import db
from app.runs.sweeper import start_sweeper
from app.schedules.firing import start_scheduler
from app.timeutil import utcnow

EMBEDDED_WORKER_KEY = "embedded-worker"


def issue_worker_token() -> str:
    """Revoke the previous embedded worker's key and create a fresh one for this start."""
    db.session.execute(
        update(ApplicationKey)
        .where(ApplicationKey.name == EMBEDDED_WORKER_KEY, ApplicationKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    _, token = create_application_key(db.session, EMBEDDED_WORKER_KEY, Permission.PIPELINES_WORKER)
    db.session.commit()
    return token


def start_worker(settings: Settings, token: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "INSTANCE_DIR": settings.INSTANCE_DIR,
        "SQLALCHEMY_DATABASE_URI": "",  # the worker never touches the database
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WORKER_API_SERVER": f"http://{settings.HOST}:{settings.PORT}",
        "WORKER_API_TOKEN": token,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
        "--pool", "threads", "--concurrency", str(settings.WORKER_CONCURRENCY),
        "-Q", f"{settings.CELERY_TASK_QUEUE},{settings.CELERY_FLOW_QUEUE}",
        "--loglevel", settings.LOG_LEVEL,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


def main() -> None:
    settings = Settings.from_env()
    os.makedirs(settings.INSTANCE_DIR, exist_ok=True)
    app = create_app(settings)
    with app.app_context():
        upgrade()
        token = issue_worker_token()
    worker = start_worker(settings, token)
    atexit.register(worker.terminate)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if settings.SWEEPER_ENABLED:
        start_sweeper(app)
    if settings.SCHEDULER_ENABLED:
        start_scheduler(app)
    app.run(host=settings.HOST, port=settings.PORT, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
