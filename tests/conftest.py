"""Fixtures layered as database -> app -> client -> entities made through the API.

Every in-process test runs twice: on SQLite (the embedded default) and on PostgreSQL
(production), each with its schema made by the real migrations.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.auth.services import create_application_key
from app.config import Settings
from app.extensions import db

PG_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "gridlabd-models"
if not MODELS.exists():  # a clone inside the work tree: shared/ sits beside it
    MODELS = Path(__file__).resolve().parents[2] / "shared" / "gridlabd-models"


def create_postgres_database() -> str:
    """Create an empty, uniquely named database; return its URI."""
    name = f"jobs_test_{uuid.uuid4().hex[:12]}"
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(uri: str) -> None:
    name = uri.rsplit("/", 1)[1]
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_uri(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'jobs.db'}"
        return
    uri = create_postgres_database()
    yield uri
    drop_postgres_database(uri)


def make_settings(instance_dir: Path, database_uri: str, **overrides: Any) -> Settings:
    return Settings.from_env(
        {},
        INSTANCE_DIR=str(instance_dir),
        SQLALCHEMY_DATABASE_URI=database_uri,
        CELERY_BROKER_URL="memory://",
        SWEEPER_ENABLED=False,
        **overrides,
    )


@pytest.fixture(scope="session")
def _migrated(database_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    app = create_app(make_settings(tmp_path_factory.mktemp("instance"), database_uri))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_uri


@pytest.fixture
def app(_migrated: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path / "instance", _migrated))
    app.testing = True
    with app.app_context():
        _empty_tables()
        yield app
        db.session.remove()
        db.engine.dispose()


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _token(permission: str) -> str:
    _, token = create_application_key(db.session, f"test-{permission}", permission)
    db.session.commit()
    return token


@pytest.fixture
def client_headers(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token('PIPELINES_CLIENT')}"}


@pytest.fixture
def worker_headers(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token('PIPELINES_WORKER')}"}


@pytest.fixture
def pipeline(client: FlaskClient, client_headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1.0/pipelines",
        json={"name": "ieee13", "model": "model.glm", "parameters": {"A": "1"}},
        headers=client_headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def model_file(
    client: FlaskClient, client_headers: dict[str, str], pipeline: dict[str, Any]
) -> dict[str, Any]:
    """The pipeline's model, uploaded: a pipeline can run once it has it."""
    response = client.post(
        f"/api/v1.0/pipelines/{pipeline['id']}/files?name={pipeline['model']}",
        data=b"clock { starttime '2000-01-01 00:00:00'; stoptime '2000-01-01 00:00:01'; }\n",
        headers=client_headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def run(
    client: FlaskClient,
    client_headers: dict[str, str],
    pipeline: dict[str, Any],
    model_file: dict[str, Any],
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1.0/pipelines/{pipeline['id']}/runs", json={}, headers=client_headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()
