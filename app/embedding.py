"""The whole job service inside another Flask application, under a URL prefix.

The service stays its own Flask app (its blueprints, error handlers, JSON settings, Swagger
UI and database session), mounted in the host's WSGI pipeline with werkzeug's
``DispatcherMiddleware``: requests under the prefix reach the service with the prefix as
their ``SCRIPT_NAME`` (so every URL it builds carries it), everything else reaches the host
untouched. Nothing is registered on the host except ``host.extensions["job_service"]``.
See docs/adr/0020-embedding.md.

    from app.embedding import JobService

    host = Flask(__name__)
    jobs = JobService(host, prefix="/jobs")      # or JobService(prefix=...).init_app(host)
    jobs.upgrade()                                # create or migrate the service's tables
    jobs.start_background()                       # in each process that serves requests
"""

from __future__ import annotations

import re
import threading

from flask import Flask
from flask_migrate import upgrade
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app.config import Settings
from app.factory import create_app
from app.runs.sweeper import start_sweeper
from app.schedules.firing import start_scheduler

# One or more path segments, none of them "." or "..".
_PREFIX = re.compile(r"(/(?!\.\.?(/|$))[A-Za-z0-9._~-]+)+")


class JobService:
    """The service mounted at ``prefix`` of ``host``; settings default to the environment
    (``SQLALCHEMY_DATABASE_URI`` may name the host's own database: the tables differ, and
    ``MIGRATIONS_VERSION_TABLE`` keeps the two migration histories apart)."""

    def __init__(
        self,
        host: Flask | None = None,
        *,
        prefix: str = "/jobs",
        settings: Settings | None = None,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix must look like '/jobs' or '/tools/jobs', not {prefix!r}")
        self.prefix = prefix
        self.settings = settings or Settings.from_env()
        self.app = create_app(self.settings, mounted_at=prefix)
        self._threads: list[threading.Thread] = []
        if host is not None:
            self.init_app(host)

    def init_app(self, host: Flask) -> JobService:
        """Route ``host``'s requests under the prefix to the service."""
        if "job_service" in host.extensions:
            raise RuntimeError("This Flask app already has a job service mounted")
        host.wsgi_app = DispatcherMiddleware(host.wsgi_app, {self.prefix: self.app})  # type: ignore[method-assign]
        host.extensions["job_service"] = self
        return self

    def upgrade(self) -> None:
        """Bring the service's tables to the newest migration (the host's are not touched)."""
        with self.app.app_context():
            upgrade()

    def start_background(self) -> None:
        """Start the sweeper (leases, retries, callbacks) and the scheduler threads, as
        SWEEPER_ENABLED and SCHEDULER_ENABLED say; once per process."""
        if self._threads:
            return
        if self.settings.SWEEPER_ENABLED:
            self._threads.append(start_sweeper(self.app))
        if self.settings.SCHEDULER_ENABLED:
            self._threads.append(start_scheduler(self.app))
