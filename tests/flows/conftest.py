"""Sources on real servers (PostgreSQL, MariaDB), a SQLite file and CSV files, made once
per test session and dropped at the end; and the flow engine run as a real process."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from app.flows import sql
from app.worker.console import parse_marker
from tests.flows import data as flow_data

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dataset() -> dict[str, Any]:
    return flow_data.make_data()


@pytest.fixture(scope="session")
def pg_source(dataset: dict[str, Any]) -> Iterator[flow_data.PgSource]:
    source = flow_data.PgSource(dataset)
    yield source
    source.drop()


@pytest.fixture(scope="session")
def maria_source(dataset: dict[str, Any]) -> Iterator[flow_data.MariaSource]:
    source = flow_data.MariaSource(dataset)
    yield source
    source.drop()


@pytest.fixture(scope="session")
def files_root(tmp_path_factory: pytest.TempPathFactory, dataset: dict[str, Any]) -> Path:
    """The data root: readings.sqlite and tariffs/*.csv inside it."""
    root = tmp_path_factory.mktemp("flows-data")
    flow_data.write_sqlite(dataset, root / "readings.sqlite")
    flow_data.write_tariffs(root / "tariffs")
    return root


@pytest.fixture
def pg_target() -> Iterator[flow_data.PgSource]:
    target = flow_data.PgSource({"meters": []})
    yield target
    target.drop()


def flow_spec(
    sources: list[dict[str, Any]],
    target: dict[str, Any],
    transforms: list[dict[str, Any]],
    checks: list[dict[str, Any]],
) -> dict[str, Any]:
    """The claim's job, as the API would build it (graph from the SQL)."""
    names = set()
    for source in sources:
        names |= {
            (t.get("name") or t["table"].rsplit(".", 1)[-1]).lower()
            for t in source.get("tables", [])
        }
        names |= {f["name"].lower() for f in source.get("files", [])}
    edges, problems = sql.graph([(t["name"], t["sql"]) for t in transforms], names)
    assert not problems, problems
    return {
        "flow_input_id": "test",
        "sources": sources,
        "target": target,
        "transforms": transforms,
        "order": sql.run_order(edges),
        "checks": checks,
        "ingest_batch_rows": 1000,
    }


def standard_sources(
    pg: flow_data.PgSource, maria: flow_data.MariaSource, root: Path
) -> list[dict[str, Any]]:
    return [
        {"store": pg.store(), "tables": [{"table": "public.meters"}]},
        {"store": maria.store(), "tables": [{"table": "feeders"}]},
        {"store": {"engine": "sqlite", "path": str(root / "readings.sqlite")},
         "tables": [{"table": "readings"}]},
        {"store": {"engine": "csv", "path": str(root / "tariffs")},
         "files": [{"name": "tariffs", "pattern": "tariffs_*.csv"}]},
    ]  # fmt: skip


class EngineRun:
    """The flow engine as a process, its markers and log lines collected."""

    def __init__(self, spec: dict[str, Any], job: Path, run_id: str = "run-1"):
        job.mkdir(parents=True, exist_ok=True)
        (job / "flow-spec.json").write_text(json.dumps(spec))
        self.job = job
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.worker.flow_engine", "--job", str(job), "--run", run_id],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        self.markers: list[dict[str, Any]] = []
        self.lines: list[str] = []

    def read_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            self._take(line)
            if self.markers and predicate(self.markers[-1]):
                return
            assert time.monotonic() < deadline, (
                f"timed out waiting for the engine: {self.markers[-3:]}"
            )
        raise AssertionError(f"engine ended first: {self.lines[-10:]}")

    def _take(self, line: str) -> None:
        line = line.rstrip("\n")
        found = parse_marker(line)
        if found is not None:
            self.markers.append(found)
        elif line.strip():
            self.lines.append(line)

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=timeout)
        for line in out.splitlines():
            self._take(line)
        return self.result

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)

    @property
    def result(self) -> dict[str, Any]:
        return next(m for m in self.markers if m["event"] == "result")

    @property
    def steps(self) -> list[dict[str, Any]]:
        return [m for m in self.markers if m["event"] == "steps"][-1]["steps"]


# --- the API with settings for flows ------------------------------------------------------


@pytest.fixture
def app(_migrated: str, tmp_path: Path, files_root: Path) -> Iterator[Any]:
    """The API app, allowed to reach the local database servers, data root ``files_root``."""
    from app import create_app
    from app.extensions import db
    from tests.conftest import _empty_tables, make_settings

    settings = make_settings(
        tmp_path / "instance",
        _migrated,
        OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        FLOWS_DATA_ROOT=str(files_root),
    )
    app = create_app(settings)
    app.testing = True
    with app.app_context():
        _empty_tables()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def change_key(app: Any) -> Callable[[], None]:
    """Restart the API with another FLOWS_SECRET_KEY (passwords stored before are then
    unreadable), as a deployment whose key changed would."""

    def change() -> None:
        settings = app.config["SETTINGS"]
        app.config["SETTINGS"] = dataclasses.replace(
            settings, FLOWS_SECRET_KEY=Fernet.generate_key().decode()
        )

    return change
