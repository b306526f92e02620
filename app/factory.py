"""The Flask application factory: each step of building the API app on its own line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flasgger import Swagger
from flask import Flask, request
from sqlalchemy import event

from app import cli, safe_text
from app.auth import decorators as auth
from app.config import Settings
from app.errors import register_error_handlers
from app.extensions import api, db, migrate
from app.flows import passwords
from app.jobs import kinds as job_kinds
from app.page import session as page_session
from app.runs import broker
from app.storage import extension as storage

API_VERSION = "1.0"
API_TITLE = "GridLAB-D job service"
# Markdown: the backticks keep "<key>" from being read as an HTML tag by the Swagger UI.
API_DESCRIPTION = (
    "Runs GridLAB-D pipelines as jobs: submit, follow state, progress and logs, download "
    "artifacts. Send `Authorization: Bearer <key>` (a PIPELINES_CLIENT key; worker routes "
    "need a PIPELINES_WORKER key). Text values must not contain NUL characters or unpaired "
    "UTF-16 surrogates (422). Errors are `{code, message, errors}`."
)


def create_app(settings: Settings | None = None, *, mounted_at: str = "") -> Flask:
    """Build the API app from ``settings`` (default: read from the environment).

    ``mounted_at``: the URL prefix under which a host application serves this one
    (app/embedding.py); the spec names it as its server, and the host's logging is left alone.
    """
    settings = settings or Settings.from_env()
    passwords.check_key(settings)
    # The instance folder holds the embedded defaults: SQLite file, artifacts, broker.
    app = Flask(__name__, instance_path=settings.INSTANCE_DIR)
    configure_app(app, settings, mounted_at)
    if not mounted_at:
        configure_logger(app, settings)
    register_extensions(app, settings)
    register_blueprints(app)
    register_swagger_ui(app)
    # After api.init_app, so this one JSON error shape wins over flask-smorest's.
    register_error_handlers(app)
    cli.register_commands(app)
    return app


def configure_app(app: Flask, settings: Settings, mounted_at: str = "") -> None:
    servers = {"servers": [{"url": mounted_at}]} if mounted_at else {}
    app.config.update(
        SETTINGS=settings,
        MOUNTED_AT=mounted_at,
        SQLALCHEMY_DATABASE_URI=settings.SQLALCHEMY_DATABASE_URI,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.SQLALCHEMY_DATABASE_URI),
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
            "info": {"description": API_DESCRIPTION},
            **servers,
        },
    )


def _engine_options(uri: str) -> dict[str, Any]:
    if uri.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def configure_logger(app: Flask, settings: Settings) -> None:
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def register_extensions(app: Flask, settings: Settings) -> None:
    db.init_app(app)
    migrate.init_app(
        app, db, directory=_migrations_dir(), version_table=settings.MIGRATIONS_VERSION_TABLE
    )
    api.init_app(app)
    safe_text.init_app(app)
    auth.init_app(app, settings.AUTH_CACHE_SECONDS)
    storage.init_app(app, settings)
    broker.init_app(app, settings)
    page_session.init_app(app, settings)
    job_kinds.init_app(app, settings)
    if settings.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
        with app.app_context():
            _serialize_sqlite_writes(db.engine)
    else:
        app.before_request(_reads_without_transaction)


def _reads_without_transaction() -> None:
    """Run GET requests in autocommit: no BEGIN and ROLLBACK round trips for a read.

    A GET only reads, so it needs no transaction; this takes two of the five database
    round trips out of ``GET run`` (docs/benchmarks.md).
    """
    if request.method in ("GET", "HEAD") and not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _migrations_dir() -> str:
    return str(Path(__file__).resolve().parent.parent / "migrations")


def _serialize_sqlite_writes(engine: Any) -> None:
    """Begin every SQLite transaction IMMEDIATE, with WAL.

    SQLite ignores SELECT ... FOR UPDATE; taking the write lock at BEGIN gives the same
    guarantee (one writer at a time, no read-then-write race) for the embedded default.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def register_blueprints(app: Flask) -> None:
    from app.flows.routes import blp as flows_blp
    from app.health.routes import blp as health_blp
    from app.home import blp as home_blp
    from app.jobs.routes import blp as jobs_blp
    from app.jobs.routes import worker_blp as job_worker_blp
    from app.pipelines.routes import blp as pipelines_blp
    from app.pipelines.routes import worker_blp as pipeline_worker_blp
    from app.runs.worker_routes import blp as run_worker_blp
    from app.schedules.routes import blp as schedules_blp
    from app.workflows.routes import blp as workflows_blp

    register_schedule_targets()

    blueprints = (
        home_blp,
        health_blp,
        pipelines_blp,
        workflows_blp,
        jobs_blp,
        flows_blp,
        schedules_blp,
        run_worker_blp,
        pipeline_worker_blp,
        job_worker_blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    # The run page: HTML and its own polling JSON, outside the API and its spec.
    from app.page.routes import blp as page_blp

    app.register_blueprint(page_blp)


def register_schedule_targets() -> None:
    """Each domain that schedules can start registers itself when imported
    (app/schedules/targets.py); the schedules domain names none of them."""
    import app.flows.schedule_target  # noqa: F401
    import app.jobs.schedule_target  # noqa: F401
    import app.pipelines.schedule_target  # noqa: F401
    import app.workflows.schedule_target  # noqa: F401


def register_swagger_ui(app: Flask) -> None:
    """Serve Swagger UI at /apidocs from the spec flask-smorest builds from the schemas.

    flasgger ships the UI's files; app/templates/flasgger/head.html replaces its head so the
    page fetches nothing from outside (no web fonts). It is told not to scan docstrings, so
    the marshmallow-generated spec is the only source.
    """
    Swagger(
        app,
        template=api.spec.to_dict(),
        config={
            "title": f"{API_TITLE} API",  # the browser tab; flasgger's default is its name
            "headers": [],
            "openapi": "3.0.3",
            "specs": [
                {
                    "endpoint": "apispec",
                    "route": "/apispec.json",
                    "rule_filter": lambda rule: False,
                    "model_filter": lambda tag: False,
                }
            ],
            "static_url_path": "/flasgger_static",
            "swagger_ui": True,
            "specs_route": "/apidocs/",
        },
        merge=True,
    )
