"""The job service inside a host Flask app (app/embedding.py), on the production shape: the
host served by gunicorn, its own routes, model and error pages untouched, one PostgreSQL
database for both, a real Celery worker reaching the service under the host's prefix, and a
real simulation run through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine, inspect

from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.conftest import IEEE13
from tests.e2e.harness import (
    PYTHON,
    TERMINAL,
    Client,
    Service,
    create_key,
    free_port,
    http_ready,
    wait_until,
    worker_service,
)
from tests.e2e.host_app import PREFIX
from tests.e2e.stack import Stack

VERSION_TABLE = "job_service_alembic_version"


class Hosted:
    def __init__(self, stack: Stack):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_uri = create_postgres_database()
        self.env = {
            **stack.env(),
            "SQLALCHEMY_DATABASE_URI": self.database_uri,
            "HOST_DATABASE_URI": self.database_uri,
            "MIGRATIONS_VERSION_TABLE": VERSION_TABLE,
            # Its own queue: the session stack's workers must not take this API's runs.
            "CELERY_TASK_QUEUE": f"embedded-{uuid.uuid4().hex[:8]}",
        }
        command = [
            PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
            "--threads", "8", "--worker-class", "gthread", "tests.e2e.host_app:create_host_app()",
        ]  # fmt: skip
        self.host = Service(
            "host", command, self.env, stack.log_dir,
            ready=http_ready(f"{self.url}{PREFIX}/healthcheck"), ready_timeout=45,
        )  # fmt: skip
        self.worker: Service | None = None

    def start(self, stack: Stack) -> Client:
        self.host.start()
        client_token = create_key(self.env, "host-client", "PIPELINES_CLIENT")
        worker_token = create_key(self.env, "host-worker", "PIPELINES_WORKER")
        worker_env = {
            **self.env,
            "SQLALCHEMY_DATABASE_URI": "",
            "WORKER_API_SERVER": f"{self.url}{PREFIX}",
            "WORKER_API_TOKEN": worker_token,
            "WORKER_JOBS_DIR": str(stack.root / "jobs-embedded"),
        }
        self.worker = worker_service(stack.log_dir, worker_env, "embedded-worker").start()
        return Client(f"{self.url}{PREFIX}", client_token)

    def stop(self) -> None:
        for service in (self.worker, self.host):
            if service is not None:
                service.stop(timeout=10)
        drop_postgres_database(self.database_uri)


@pytest.fixture
def hosted(e2e_stack: Stack) -> Iterator[Hosted]:
    hosted = Hosted(e2e_stack)
    try:
        yield hosted
    finally:
        hosted.stop()


def test_a_host_app_runs_a_simulation_through_the_embedded_service(hosted, e2e_stack):
    client = hosted.start(e2e_stack)

    # The host's own routes, JSON settings, model and error pages are its own.
    assert requests.post(f"{hosted.url}/notes", json={"text": "feeder 7"}, timeout=10).ok
    notes = requests.get(f"{hosted.url}/notes", timeout=10)
    assert notes.text.startswith('{\n  "zebra": 1,'), notes.text  # unsorted, indented
    missing = requests.get(f"{hosted.url}/no-such-page", timeout=10)
    assert (missing.status_code, missing.text) == (404, "host: no such page")
    # ...and the service's are its own, under the prefix.
    service_missing = client.get("/api/v1.0/pipelines/no-such-id")
    assert service_missing.status_code == 404
    assert service_missing.json()["code"] == "NOT_FOUND"
    home = client.get("/").json()
    assert home["links"] == {
        "docs": f"{PREFIX}/apidocs/",
        "openapi": f"{PREFIX}/apispec.json",
        "api": f"{PREFIX}/api/v1.0",
        "page": f"{PREFIX}/page/",
    }
    assert client.get("/apispec.json").json()["servers"] == [{"url": PREFIX}]
    docs = client.get("/apidocs/")
    assert docs.status_code == 200 and f"{PREFIX}/flasgger_static/" in docs.text

    # A real simulation, claimed and reported by a worker through the host's prefix.
    pipeline = client.pipeline_with_files("test_IEEE_13_NR.glm", [("test_IEEE_13_NR.glm", IEEE13)])
    response = client.create_run_response(pipeline["id"])
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(
        f"{PREFIX}/api/v1.0/pipelines/{pipeline['id']}/runs/{response.json()['id']}"
    )
    run = client.wait_terminal(pipeline["id"], response.json()["id"], timeout=90)
    assert run["state"] == "COMPLETED", run
    voltage = next(a for a in run["artifacts"] if a["name"] == "IEEE_13_NR_voltage.csv")
    assert voltage["url"].startswith(f"{hosted.url}{PREFIX}/api/v1.0/"), voltage
    redirect = client.download(voltage)  # to the store, as outside a host
    assert redirect.status_code == 302, redirect.text
    csv = requests.get(redirect.headers["Location"], timeout=30)
    assert csv.status_code == 200 and b"node_name,voltA" in csv.content[:4000]

    # A Python job through the host: a workflow hands the simulation's CSV to csv_summary.
    nodes = [
        {"name": "sim", "pipeline_id": pipeline["id"]},
        {
            "name": "summary",
            "job_kind": "csv_summary",
            "inputs": [
                {"name": "v.csv", "from": {"node": "sim", "artifact": "IEEE_13_NR_voltage.csv"}}
            ],
        },
    ]
    workflow = client.post("/api/v1.0/workflows", json={"name": "w", "nodes": nodes}).json()
    started = client.post(f"/api/v1.0/workflows/{workflow['id']}/runs", json={})
    assert started.status_code == 201, started.text
    path = f"/api/v1.0/workflows/{workflow['id']}/runs/{started.json()['id']}"
    ended = wait_until(
        lambda: (body := client.get(path).json())["state"] in TERMINAL and body,
        90,
        "the embedded workflow run to end",
    )
    assert ended["state"] == "COMPLETED", ended
    summary_id = next(n for n in ended["nodes"] if n["name"] == "summary")["run_ids"][0]
    job_run = client.get(f"/api/v1.0/job-kinds/csv_summary/runs/{summary_id}").json()
    summary = next(a for a in job_run["artifacts"] if a["name"] == "summary.json")
    stats = requests.get(client.download(summary).headers["Location"], timeout=30).json()
    assert "voltA_mag" in stats["columns"], stats

    # One database, two migration histories: the host's table beside the service's.
    engine = create_engine(hosted.database_uri)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"host_notes", "pipelines", "runs", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables
