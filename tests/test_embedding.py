"""app/embedding.py: the service mounted in a host app, which keeps its own routes, error
pages and JSON settings (tests/e2e/test_embedding.py runs a simulation through it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask, jsonify
from sqlalchemy import create_engine, inspect

from app.auth.models import Permission
from app.auth.services import create_application_key
from app.embedding import JobService
from app.extensions import db
from tests.conftest import make_settings


@pytest.fixture
def host(tmp_path: Path) -> Flask:
    host = Flask("host")
    host.json.sort_keys = False  # type: ignore[attr-defined]

    @host.errorhandler(404)
    def not_found(_error: object) -> tuple[str, int]:
        return "host: no such page", 404

    @host.route("/hello")
    def hello() -> object:
        return jsonify(zebra=1, apple=2)

    return host


def _service(host: Flask, tmp_path: Path, prefix: str = "/tools/jobs") -> JobService:
    settings = make_settings(tmp_path / "instance", f"sqlite:///{tmp_path / 'shared.db'}")
    return JobService(host, prefix=prefix, settings=settings)


def test_the_host_keeps_its_routes_errors_and_json(host: Flask, tmp_path: Path) -> None:
    _service(host, tmp_path)
    client = host.test_client()
    assert client.get("/hello").get_data(as_text=True).startswith('{"zebra":1,')
    missing = client.get("/nope")
    assert (missing.status_code, missing.get_data(as_text=True)) == (404, "host: no such page")
    # The service's own 404, with its error body, under the prefix only.
    inside = client.get("/tools/jobs/api/v1.0/nope")
    assert inside.status_code == 404 and inside.get_json()["code"] == "NOT_FOUND"


def test_urls_the_service_builds_carry_the_prefix(host: Flask, tmp_path: Path) -> None:
    service = _service(host, tmp_path)
    service.upgrade()
    with service.app.app_context():
        _, token = create_application_key(db.session, "c", Permission.PIPELINES_CLIENT)
        db.session.commit()
    client = host.test_client()
    created = client.post(
        "/tools/jobs/api/v1.0/pipelines",
        json={"name": "p", "model": "m.glm"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.get_json()
    assert created.headers["Location"].endswith(
        f"/tools/jobs/api/v1.0/pipelines/{created.json['id']}"
    )
    assert client.get("/tools/jobs/").get_json()["links"]["api"] == "/tools/jobs/api/v1.0"
    assert client.get("/tools/jobs/apispec.json").get_json()["servers"] == [{"url": "/tools/jobs"}]


def test_the_run_page_signs_in_under_the_prefix(host: Flask, tmp_path: Path) -> None:
    service = _service(host, tmp_path)
    service.upgrade()
    with service.app.app_context():
        _, token = create_application_key(db.session, "c", Permission.PIPELINES_CLIENT)
        db.session.commit()
    client = host.test_client()
    form = client.get("/tools/jobs/page/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, form
    signed = client.post(
        "/tools/jobs/page/signin",
        data={"key": token, "csrf_token": csrf.group(1), "next": "/tools/jobs/page/"},
    )
    assert signed.status_code == 303 and signed.headers["Location"] == "/tools/jobs/page/"
    assert "Path=/tools/jobs/page" in signed.headers["Set-Cookie"]
    assert client.get("/tools/jobs/page/").status_code == 200  # the cookie came back


def test_the_service_keeps_its_own_migration_history(host: Flask, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "instance",
        f"sqlite:///{tmp_path / 'shared.db'}",
        MIGRATIONS_VERSION_TABLE="jobs_version",
    )
    JobService(host, settings=settings).upgrade()
    engine = create_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert "jobs_version" in tables and "alembic_version" not in tables


@pytest.mark.parametrize("prefix", ["", "/", "jobs", "/jobs/", "/a b", "/../x"])
def test_a_bad_prefix_is_refused(host: Flask, tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        _service(host, tmp_path, prefix)


def test_one_service_per_host(host: Flask, tmp_path: Path) -> None:
    _service(host, tmp_path)
    with pytest.raises(RuntimeError, match="already"):
        _service(host, tmp_path, "/other")
