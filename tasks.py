"""invoke tasks: ``invoke --list``."""

from __future__ import annotations

from invoke import Context, task

from app import create_app
from app.auth.services import create_application_key as create_key
from app.extensions import db


@task(
    help={
        "name": "Who or what the key is for",
        "permission": "PIPELINES_CLIENT or PIPELINES_WORKER",
    }
)
def create_application_key(c: Context, name: str, permission: str) -> None:
    """Create an API key; prints API_TOKEN=<key> once (it is stored hashed)."""
    app = create_app()
    with app.app_context():
        _, token = create_key(db.session, name, permission)
        db.session.commit()
    print(f"API_TOKEN={token}")


@task
def db_upgrade(c: Context) -> None:
    """Create or upgrade the database schema (flask db upgrade)."""
    c.run("flask --app app db upgrade", pty=False)


@task
def test(c: Context) -> None:
    """Lint, then run the whole test suite."""
    c.run("ruff check . && ruff format --check . && pytest", pty=False)


@task
def worker(c: Context, concurrency: int = 2, queue: str = "jobs") -> None:
    """Start a Celery worker (needs CELERY_BROKER_URL, WORKER_API_SERVER, WORKER_API_TOKEN)."""
    c.run(
        f"celery -A app.worker.celery_app worker --pool threads --concurrency {concurrency} "
        f"-Q {queue} --loglevel INFO",
        pty=False,
    )
