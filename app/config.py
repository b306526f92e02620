"""Typed settings read from the environment.

Every setting the service understands is declared here once, with its type and default;
the README's configuration table lists the same names. Values are parsed (``"false"`` is
False, ``"30"`` is 30) and a malformed value fails at start-up, naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A setting in the environment cannot be parsed."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}: expected true/false, got {raw!r}")


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None


def _parse_float(name: str, raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None


_PARSERS = {bool: _parse_bool, int: _parse_int, float: _parse_float}

DEFAULT_INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The service's configuration; field names are the environment variable names."""

    INSTANCE_DIR: str = str(DEFAULT_INSTANCE_DIR)
    SQLALCHEMY_DATABASE_URI: str = ""
    CELERY_BROKER_URL: str = ""
    CELERY_TASK_QUEUE: str = "jobs"
    BROKER_PUBLISH_TIMEOUT_SECONDS: float = 2.0

    ARTIFACTS_DIR: str = ""
    S3_ENDPOINT_URL: str = ""
    S3_BUCKET: str = ""
    S3_ACCESS_KEY_ID: str = ""
    S3_SECRET_ACCESS_KEY: str = ""
    S3_REGION_NAME: str = "us-east-1"
    S3_PRESIGN_EXPIRES_SECONDS: int = 3600

    MAX_FILE_UPLOAD_BYTES: int = 256 * 1024 * 1024
    MAX_ARTIFACT_UPLOAD_BYTES: int = 20 * 1024 * 1024 * 1024

    DEFAULT_TIMEOUT_SECONDS: int = 3600
    MAX_TIMEOUT_SECONDS: int = 7 * 24 * 3600
    RUN_LEASE_SECONDS: int = 30
    SWEEP_INTERVAL_SECONDS: float = 5.0
    REDISPATCH_AFTER_SECONDS: int = 300
    TIMEOUT_GRACE_SECONDS: int = 30
    SWEEPER_ENABLED: bool = True
    MIGRATIONS_VERSION_TABLE: str = "alembic_version"
    SCHEDULER_ENABLED: bool = True
    SCHEDULE_TICK_SECONDS: float = 1.0
    SCHEDULE_MISFIRE_GRACE_SECONDS: int = 60
    SCHEDULE_MIN_INTERVAL_SECONDS: int = 60
    SCHEDULE_FIRES_KEEP_DAYS: int = 90

    CALLBACK_SIGNING_SECRET: str = ""
    OUTBOUND_ALLOWED_HOSTS: str = ""
    INPUT_S3_BUCKETS: str = ""
    IDEMPOTENCY_PENDING_SECONDS: float = 60.0
    IDEMPOTENCY_TTL_SECONDS: int = 86400
    CALLBACK_RETRY_BACKOFF_SECONDS: int = 5
    AUTH_CACHE_SECONDS: float = 10.0

    WORKER_API_SERVER: str = "http://127.0.0.1:5000"
    WORKER_API_TOKEN: str = ""
    WORKER_JOBS_DIR: str = ""
    WORKER_HEARTBEAT_SECONDS: float = 1.0
    WORKER_CANCEL_GRACE_SECONDS: float = 3.0
    WORKER_LOG_FLUSH_SECONDS: float = 0.5
    WORKER_SANDBOX: bool = True
    WORKER_CONCURRENCY: int = 2

    PAGE_SESSION_SECRET: str = ""
    PAGE_SESSION_SECONDS: int = 12 * 3600
    PAGE_COOKIE_SECURE: bool = False
    PAGE_POLL_SECONDS: float = 1.0
    PAGE_PLOT_MAX_BYTES: int = 256 * 1024 * 1024
    JOB_KINDS: str = ""
    JOB_KIND_QUEUES: str = ""
    WORKER_JOB_KINDS: str = ""
    WORKER_ANNOUNCE_SECONDS: float = 10.0
    CELERY_FLOW_QUEUE: str = "flows"
    FLOWS_DATA_ROOT: str = ""
    FLOWS_SECRET_KEY: str = ""
    FLOWS_INGEST_BATCH_ROWS: int = 50000

    LOG_LEVEL: str = "INFO"
    HOST: str = "127.0.0.1"
    PORT: int = 5000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in overrides:
                values[field.name] = overrides[field.name]
            elif field.name in environ:
                parser = _PARSERS.get(type(field.default))
                raw = environ[field.name]
                values[field.name] = parser(field.name, raw) if parser else raw
        return cls(**values).with_derived_defaults()

    def with_derived_defaults(self) -> Settings:
        """Fill the embedded defaults (SQLite, local broker and artifact folders)."""
        instance = Path(self.INSTANCE_DIR)
        return dataclasses.replace(
            self,
            SQLALCHEMY_DATABASE_URI=self.SQLALCHEMY_DATABASE_URI
            or f"sqlite:///{instance / 'jobs.db'}",
            CELERY_BROKER_URL=self.CELERY_BROKER_URL or "filesystem://",
            ARTIFACTS_DIR=self.ARTIFACTS_DIR or str(instance / "artifacts"),
            WORKER_JOBS_DIR=self.WORKER_JOBS_DIR or str(instance / "jobs"),
            FLOWS_DATA_ROOT=self.FLOWS_DATA_ROOT or str(instance / "data"),
        )

    @property
    def uses_s3(self) -> bool:
        return bool(self.S3_BUCKET)

    @property
    def broker_data_dir(self) -> Path:
        """Folder of the embedded ``filesystem://`` broker, shared by API and worker."""
        return Path(self.INSTANCE_DIR) / "broker"
