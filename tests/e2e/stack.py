"""The whole service, for real: Redis, S3 (moto), PostgreSQL, gunicorn API, Celery workers."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.harness import (
    ALLOWED_TEST_HOST,
    FAST_RECOVERY,
    PYTHON,
    TERMINAL,
    Client,
    Service,
    api_service,
    create_bucket,
    create_key,
    free_port,
    moto_service,
    redis_service,
    run_command,
    tail,
    worker_service,
)

TEST_JOB_KINDS = "tests.jobkinds:Sleeper,tests.jobkinds:failer,tests.jobkinds:nobody"
WORKER_JOB_KINDS = "csv_summary,voltage_report,test_sleeper,test_failer"


class Stack:
    def __init__(self, root: Path):
        self.root = root
        self.log_dir = root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.s3_port = free_port()
        self.api_port = free_port()
        self.queue = f"e2e-{uuid.uuid4().hex[:10]}"
        self.bucket = f"e2e-{uuid.uuid4().hex[:10]}"
        self.flows_bucket = f"e2e-data-{uuid.uuid4().hex[:10]}"  # CSV files flows read
        self.flows_data = root / "flows-data"
        self.database_uri: str | None = None
        self.redis: Service | None = None
        self.s3: Service | None = None
        self.api: Service | None = None
        self.workers: list[Service] = []
        self._worker_count = 0
        self.client_token = ""
        self.worker_token = ""
        self.timings: dict[str, float] = {}
        self.callback_secret = f"e2e-{uuid.uuid4().hex}"

    # --- start and stop ---

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        assert self.database_uri is not None
        return {
            **os.environ,
            "SQLALCHEMY_DATABASE_URI": self.database_uri,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CELERY_TASK_QUEUE": self.queue,
            "CELERY_FLOW_QUEUE": f"{self.queue}-flows",
            "FLOWS_DATA_ROOT": str(self.flows_data),
            "INPUT_S3_BUCKETS": self.flows_bucket,
            "S3_ENDPOINT_URL": self.s3_url,
            "S3_BUCKET": self.bucket,
            "S3_ACCESS_KEY_ID": "e2e",
            "S3_SECRET_ACCESS_KEY": "e2e-secret",
            "S3_REGION_NAME": "us-east-1",
            "INSTANCE_DIR": str(self.root / "instance"),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "OUTBOUND_ALLOWED_HOSTS": ALLOWED_TEST_HOST,
            "CALLBACK_SIGNING_SECRET": self.callback_secret,
            "CALLBACK_RETRY_BACKOFF_SECONDS": "1",
            # Test job kinds beside the examples; test_nobody is run by no worker.
            "JOB_KINDS": TEST_JOB_KINDS,
            "WORKER_ANNOUNCE_SECONDS": "1",
            **FAST_RECOVERY,
        }

    def worker_env(self) -> dict[str, str]:
        return {
            **self.env(),
            "SQLALCHEMY_DATABASE_URI": "",  # workers never touch the database
            "WORKER_API_SERVER": self.api_url,
            "WORKER_API_TOKEN": self.worker_token,
            "WORKER_JOB_KINDS": WORKER_JOB_KINDS,
        }

    def start(self) -> None:
        started = time.monotonic()
        self.redis = redis_service(self.log_dir, self.redis_port).start(wait=False)
        self.s3 = moto_service(self.log_dir, self.s3_port).start(wait=False)
        self.database_uri = create_postgres_database()
        run_command(
            [PYTHON, "-m", "flask", "--app", "app", "db", "upgrade"], self.env(), "db upgrade"
        )
        self.client_token = create_key(self.env(), "e2e-client", "PIPELINES_CLIENT")
        self.worker_token = create_key(self.env(), "e2e-worker", "PIPELINES_WORKER")
        self.redis.wait_ready()
        self.s3.wait_ready()
        create_bucket(self.s3_url, self.bucket)
        create_bucket(self.s3_url, self.flows_bucket)
        self.flows_data.mkdir(exist_ok=True)
        self.api = api_service(self.log_dir, self.env(), self.api_port).start()
        self.timings["stack_start_seconds"] = time.monotonic() - started

    def add_worker(
        self,
        wait: bool = True,
        concurrency: int = 2,
        api_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Service:
        """Start a worker; ``api_url`` makes it reach the API another way (a slow proxy);
        ``env`` overrides settings (WORKER_JOB_KINDS...)."""
        self._worker_count += 1
        env = {
            **self.worker_env(),
            **({"WORKER_API_SERVER": api_url} if api_url else {}),
            **(env or {}),
        }
        worker = worker_service(self.log_dir, env, f"worker{self._worker_count}", concurrency)
        (self.root / f"jobs-{worker.name}").mkdir(exist_ok=True)
        worker.env["WORKER_JOBS_DIR"] = str(self.root / f"jobs-{worker.name}")
        self.workers.append(worker)
        worker.start(wait=wait)
        return worker

    def add_flow_worker(self) -> Service:
        """A data worker: it consumes the flow queue only."""
        self._worker_count += 1
        env = {**self.worker_env(), "CELERY_TASK_QUEUE": f"{self.queue}-flows"}
        worker = worker_service(self.log_dir, env, f"flowworker{self._worker_count}", 2)
        worker.env["WORKER_JOBS_DIR"] = str(self.root / f"jobs-{worker.name}")
        self.workers.append(worker)
        worker.start(wait=True)
        return worker

    def running_workers(self) -> list[Service]:
        return [w for w in self.workers if w.running()]

    def ensure_infra(self) -> None:
        """Bring back Redis and the API if a previous (fault) test left them down."""
        assert self.redis and self.api
        if not self.redis.running():
            self.redis.start()
        if not self.api.running():
            self.api.start()

    def ensure_up(self) -> None:
        """Infrastructure, API and at least one worker, whatever a previous test did."""
        self.ensure_infra()
        if not self.running_workers():
            self.add_worker()

    def stop(self) -> None:
        for service in [*self.workers, self.api, self.s3, self.redis]:
            if service is not None:
                with contextlib.suppress(Exception):
                    service.stop(timeout=10)
        if self.database_uri:
            with contextlib.suppress(Exception):
                drop_postgres_database(self.database_uri)

    # --- helpers for tests ---

    def client(self) -> Client:
        return Client(self.api_url, self.client_token, diagnostics=self.diagnostics)

    def services(self) -> list[Service]:
        return [s for s in [self.api, *self.workers, self.redis, self.s3] if s is not None]

    def diagnostics(self, lines: int = 40) -> str:
        parts = []
        for service in self.services():
            if service.name.startswith("worker") or service.name == "api":
                state = "running" if service.running() else "stopped"
                parts.append(
                    f"--- {service.log_path} ({state}) ---\n{tail(service.log_path, lines)}"
                )
        return "\n".join(parts)

    def settle(self, client: Client, runs: list[tuple[str, str]], timeout: float = 30) -> None:
        """Cancel the given runs that are still unfinished and wait until they end.

        Fails, naming the run, if one cannot be read or cancelled or does not end: a run a
        test leaves stuck is a finding, not something for the teardown to hide.
        """
        unfinished = []
        for pipeline_id, run_id in runs:
            response = client.get(client.run_path(pipeline_id, run_id))
            if response.status_code == 404:  # deleted by the test, with its pipeline
                continue
            assert response.status_code == 200, (
                f"settle: GET run {run_id}: {response.status_code} {response.text}"
            )
            if response.json()["state"] in TERMINAL:
                continue
            cancel = client.cancel(pipeline_id, run_id)
            # 409: the run ended between the read and the cancel.
            assert cancel.status_code in (200, 409), (
                f"settle: cancel run {run_id}: {cancel.status_code} {cancel.text}"
            )
            unfinished.append((pipeline_id, run_id))
        deadline = time.monotonic() + timeout
        for pipeline_id, run_id in unfinished:
            client.wait_for_state(
                pipeline_id, run_id, TERMINAL, max(1.0, deadline - time.monotonic())
            )
