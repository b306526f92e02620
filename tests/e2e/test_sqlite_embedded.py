"""The embedded default, as a user starts it: ``python run.py`` (SQLite, local artifacts, a
file-system broker and a child worker), no other service."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import IEEE13
from tests.e2e.harness import (
    PYTHON,
    Client,
    Service,
    artifact,
    create_key,
    describe,
    free_port,
    history,
    http_ready,
    sha256_of,
    tail,
)
from tests.e2e.procs import alive, descendants, kill_all

# Settings the session's e2e stack uses; the embedded service must not inherit any of them.
SERVICE_SETTINGS = (
    "SQLALCHEMY_DATABASE_URI", "CELERY_BROKER_URL", "CELERY_TASK_QUEUE", "ARTIFACTS_DIR",
    "S3_ENDPOINT_URL", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
    "WORKER_API_SERVER", "WORKER_API_TOKEN", "WORKER_JOBS_DIR",
)  # fmt: skip


@pytest.fixture
def embedded(tmp_path) -> Iterator[tuple[Service, dict[str, str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_SETTINGS}
    env.update(
        INSTANCE_DIR=str(tmp_path / "instance"),
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        WORKER_HEARTBEAT_SECONDS="1",
    )
    service = Service(
        "embedded",
        [PYTHON, "run.py"],
        env,
        tmp_path,
        ready=http_ready(f"http://127.0.0.1:{port}/healthcheck"),
        ready_timeout=60,
    )
    service.start()
    service.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        yield service, env
    finally:
        children = descendants(service.pid)
        service.stop(timeout=15)
        kill_all(alive(children))


@pytest.mark.timeout(150)
def test_embedded_run_py_runs_ieee13(embedded, tmp_path):
    service, env = embedded
    token = create_key(env, "embedded-client", "PIPELINES_CLIENT")
    client = Client(service.url, token, diagnostics=lambda: tail(service.log_path, 80))
    assert (tmp_path / "instance" / "jobs.db").exists()

    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    run = client.create_run(pipeline["id"])
    run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 90)
    assert history(run) == ["READY", "RUNNING", "COMPLETED"], describe(run)

    item = artifact(run, "IEEE_13_NR_voltage.csv")
    response = client.download(item)
    assert response.status_code == 200, response.text  # streamed from the local store
    assert response.content and sha256_of(response.content) == item["sha256"]
    assert len(response.content) == item["size"]
    text = response.content.decode()
    assert "node_name,voltA_mag" in text and "n650" in text
    # The bytes live under the instance folder, not in S3.
    stored = list((tmp_path / "instance" / "artifacts").rglob("IEEE_13_NR_voltage.csv"))
    assert stored and sha256_of(stored[0].read_bytes()) == item["sha256"]
