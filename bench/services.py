"""Processes and scratch databases for the benchmark scripts."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get(
    "BENCH_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin(sql: str) -> None:
    connection = psycopg2.connect(ADMIN_DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def _flask(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


class BenchDatabase:
    """A migrated scratch PostgreSQL database with a client and a worker key, and a broker:
    BENCH_BROKER_URL if set, else a private redis-server started for the benchmark."""

    def __init__(self, **settings: str):
        self.name = f"jobs_bench_{uuid.uuid4().hex[:10]}"
        self.uri = ADMIN_DSN.rsplit("/", 1)[0] + f"/{self.name}"
        self.instance = Path(f"/tmp/{self.name}")
        self.settings = settings
        self.broker_url = os.environ.get("BENCH_BROKER_URL", "")
        self.redis: subprocess.Popen | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "SQLALCHEMY_DATABASE_URI": self.uri,
            "INSTANCE_DIR": str(self.instance),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_QUEUE": self.name,
            "LOG_LEVEL": "WARNING",
            **self.settings,
            **extra,
        }

    def __enter__(self) -> BenchDatabase:
        if not self.broker_url:
            port = free_port()
            self.redis = start_redis(port)
            self.broker_url = f"redis://127.0.0.1:{port}/0"
        try:
            _admin(f'CREATE DATABASE "{self.name}"')
            _flask(self.env(), "db", "upgrade")
            self.client_key = self._key("bench", "PIPELINES_CLIENT")
            self.worker_key = self._key("bench-w", "PIPELINES_WORKER")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _key(self, name: str, permission: str) -> str:
        out = _flask(self.env(), "create-application-key", "-n", name, "-p", permission)
        return re.search(r"API_TOKEN=(\S+)", out).group(1)

    def __exit__(self, *exc: Any) -> None:
        try:
            _admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            if self.redis is not None:
                stop_process(self.redis)


def start_redis(port: int) -> subprocess.Popen:
    """A private redis-server without persistence: the benchmarks need no Redis running."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", "/tmp"],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return process
        except OSError:
            time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"redis-server did not answer on port {port} within 15 s")


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT, env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        start_new_session=True,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/healthcheck")
    return process


def start_worker(env: dict[str, str], concurrency: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
         "--pool", "threads", "--concurrency", str(concurrency),
         "-Q", env["CELERY_TASK_QUEUE"], "--loglevel", "WARNING"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def claimed_run(base: str, database: BenchDatabase) -> tuple[str, str]:
    """Create a pipeline and a run, claim it as attempt 1; return the run's client URL and
    its worker URL."""
    client = {"Authorization": f"Bearer {database.client_key}"}
    pipeline = requests.post(
        f"{base}/api/v1.0/pipelines", json={"name": "bench", "model": "m.glm"}, headers=client
    ).json()
    files = f"{base}/api/v1.0/pipelines/{pipeline['id']}/files?name=m.glm"
    # A pipeline runs once it has its model.
    requests.post(files, data=b"// m\n", headers=client).raise_for_status()
    run = requests.post(
        f"{base}/api/v1.0/pipelines/{pipeline['id']}/runs", json={}, headers=client
    ).json()
    worker = f"{base}/api/v1.0/worker/runs/{run['id']}"
    requests.post(
        f"{worker}/claim",
        json={"worker_id": "bench", "claim_token": "bench"},
        headers={"Authorization": f"Bearer {database.worker_key}"},
    ).raise_for_status()
    return f"{base}/api/v1.0/pipelines/{pipeline['id']}/runs/{run['id']}", worker


def replace_section(title: str, body: str) -> None:
    """Replace the body of ``## title`` in docs/benchmarks.md (or append the section)."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"(## {re.escape(title)}\n)(.*?)(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda m: m.group(1) + "\n" + body, text)
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n{body}"
    BENCHMARKS.write_text(text)
