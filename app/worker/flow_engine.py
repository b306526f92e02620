"""Run one flow in this process: ingest, transforms, checks, publish.

    python -m app.worker.flow_engine --job JOB_ROOT --run RUN_ID

The job folder holds ``flow-spec.json`` (the claim's job, with connection info; read and
deleted at once). The work runs in a thread; the main thread waits for it and handles
SIGINT (a cancel or a timeout from the supervisor): it interrupts the running DuckDB query
(``connection.interrupt()``) and cancels the query running on a source or target server,
so the work stops within moments; the supervisor kills the process if it does not.

Output on stdout: one log line per step (rows, seconds) and marker lines (console.MARKER)
with the steps, progress and the result, which the worker task turns into reports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from app.flows import connectors
from app.flows import steps as flow_steps
from app.flows.identifiers import quote
from app.worker import flow_ingest, flow_publish
from app.worker.console import marker
from app.worker.gridlabd_driver import die_with_parent

SPEC_FILE = "flow-spec.json"
MANIFEST = "manifest.json"
WORK_DB = "work.duckdb"
_LINE = re.compile(r"LINE (\d+):\s?(.*)$", re.M)


class StepFailed(Exception):
    def __init__(self, kind: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.kind, self.message, self.details = kind, message, details or {}


class Cancelled(Exception):
    pass


_OUTPUT = threading.Lock()  # the work thread and the main thread both write lines


def emit(event: dict[str, Any]) -> None:
    fields = dict(event)
    log(marker(fields.pop("event"), **fields))


def log(line: str) -> None:
    with _OUTPUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class FlowEngine:
    def __init__(self, spec: dict[str, Any], root: Path, run_id: str):
        self.spec, self.root, self.run_id = spec, root, run_id
        self.scratch = root / "flow"
        self.scratch.mkdir(exist_ok=True)
        self.work_path = self.scratch / WORK_DB
        self.cancelled = threading.Event()
        self.remote = flow_ingest.Remote()
        self._connection: Any = None
        self._connection_lock = threading.Lock()
        self.steps = flow_steps.plan(spec["sources"], spec["order"], spec["checks"])
        self.result: dict[str, Any] = {"state": "FAILED", "error": None}
        self._snapshots: dict[str, str | None] = {}  # a DuckDB file -> its copy's alias
        self.started = time.time()

    # --- steps ------------------------------------------------------------------------

    def _step(self, name: str) -> dict[str, Any]:
        return next(s for s in self.steps if s["name"] == name)

    def _report(self) -> None:
        emit({"event": "steps", "steps": self.steps})
        done = sum(1 for s in self.steps if s["state"] in ("COMPLETED", "SKIPPED"))
        running = next((s["name"] for s in self.steps if s["state"] == "RUNNING"), None)
        emit({
            "event": "status",
            "percent": round(100.0 * done / len(self.steps), 1),
            "text": running or f"{done} of {len(self.steps)} steps done",
        })  # fmt: skip

    def _run_step(self, name: str, work: Any) -> Any:
        if self.cancelled.is_set():
            raise Cancelled()
        step = self._step(name)
        step["state"] = "RUNNING"
        self._report()
        started = time.monotonic()
        try:
            rows = work()
        except BaseException:
            step["state"] = "CANCELLED" if self.cancelled.is_set() else "FAILED"
            step["seconds"] = round(time.monotonic() - started, 3)
            raise
        step["seconds"] = round(time.monotonic() - started, 3)
        step["rows"] = rows if isinstance(rows, int) else None
        step["state"] = "COMPLETED"
        unit = "offending rows" if step["kind"] == "check" else "rows"
        rows_text = f"{rows:,} {unit}" if isinstance(rows, int) else "done"
        log(f"{name}: {rows_text} in {step['seconds']:.3f} s")
        self._report()
        return rows

    # --- cancel -----------------------------------------------------------------------

    def set_connection(self, connection: Any) -> None:
        with self._connection_lock:
            self._connection = connection

    def interrupt(self) -> None:
        """From the main thread: stop the DuckDB query and any server query now."""
        self.cancelled.set()
        with self._connection_lock:
            connection = self._connection
        if connection is not None:
            try:
                connection.interrupt()
            except Exception:  # noqa: BLE001, S110 - closing meanwhile is fine
                pass
        self.remote.cancel()

    def report_query_progress(self) -> None:
        """From the main thread: progress within the running transform or check."""
        running = next((s for s in self.steps if s["state"] == "RUNNING"), None)
        if running is None or running["kind"] not in ("transform", "check"):
            return
        with self._connection_lock:
            connection = self._connection
            try:
                within = connection.query_progress() if connection is not None else -1
            except Exception:  # noqa: BLE001 - the connection is between queries or closing
                return
        if within is None or within < 0:
            return
        done = sum(1 for s in self.steps if s["state"] in ("COMPLETED", "SKIPPED"))
        emit({
            "event": "status",
            "percent": round(100.0 * (done + within / 100.0) / len(self.steps), 1),
            "text": f"{running['name']}: {within:.0f}% of its query",
        })  # fmt: skip

    # --- the flow ---------------------------------------------------------------------

    def run(self) -> None:
        self._report()
        try:
            connection = duckdb.connect(
                str(self.work_path),
                config={
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "temp_directory": str(self.scratch / "tmp"),
                },
            )
            # DuckDB's own progress of a long query, read from the main thread.
            connection.execute("SET enable_progress_bar = true")
            connection.execute("SET enable_progress_bar_print = false")
            self.set_connection(connection)
            self.ingest(connection)
            self.lock(connection)
            self.transform(connection)
            failures = self.check(connection)
            self.set_connection(None)
            connection.close()
            if failures:
                self._skip_rest()
                raise StepFailed(
                    "CHECK_FAILED",
                    f"{len(failures)} data check(s) failed: {failures[0]['message']}",
                    {"checks": failures},
                )
            self.publish()
            self.result = {"state": "COMPLETED", "error": None}
        except (Cancelled, duckdb.InterruptException) as _:
            self._stopped()
        except StepFailed as exc:
            if self.cancelled.is_set():
                self._stopped()
            else:
                self._skip_rest()
                self.result = {
                    "state": "FAILED",
                    "error": {"type": exc.kind, "message": exc.message, "details": exc.details},
                }
        finally:
            self._write_manifest()
            emit({"event": "steps", "steps": self.steps})
            emit({"event": "result", **self.result})

    def _stopped(self) -> None:
        for step in self.steps:
            if step["state"] in ("PENDING", "RUNNING"):
                step["state"] = "CANCELLED"
        self.result = {"state": "CANCELLED", "error": None}

    def _skip_rest(self) -> None:
        for step in self.steps:
            if step["state"] == "PENDING":
                step["state"] = "SKIPPED"

    def ingest(self, connection: Any) -> None:
        batch = int(self.spec.get("ingest_batch_rows") or 50000)
        for source in self.spec["sources"]:
            store = source["store"]
            for item in source.get("tables", []):
                name = flow_steps.source_table_name(item)
                self._run_step(
                    flow_steps.ingest_step(name),
                    lambda n=name, t=item["table"], s=store: self._ingest_table(
                        connection, s, t, n, batch
                    ),
                )
            for item in source.get("files", []):
                self._run_step(
                    flow_steps.ingest_step(item["name"]),
                    lambda i=item, s=store: self._ingest_files(connection, s, i),
                )
        self._report()

    def _ingest_table(
        self, connection: Any, store: dict[str, Any], table: str, name: str, batch: int
    ) -> int:
        try:
            if store["engine"] == "duckdb":
                parts = ".".join(quote(p) for p in table.split("."))
                alias = self._snapshot(connection, store["path"])
                if alias is not None:
                    read = f"CREATE VIEW {quote(name)} AS SELECT * FROM {alias}.{parts}"
                    connection.execute(read)
                else:  # no room for a copy of the whole file: copy this table's rows
                    connection.execute(f"ATTACH {_literal(store['path'])} AS src (READ_ONLY)")
                    try:
                        connection.execute(
                            f"CREATE TABLE {quote(name)} AS SELECT * FROM src.{parts}"
                        )
                    finally:
                        connection.execute("DETACH src")
                return connection.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
            path = self.scratch / f"ingest-{name}.csv"
            types = flow_ingest.server_table_to_csv(store, table, path, self.remote, batch)
            if self.cancelled.is_set():
                raise Cancelled()
            rows = flow_ingest.load_csv(connection, name, [path], types)
            path.unlink()
            return rows
        except (Cancelled, duckdb.InterruptException):
            raise
        except connectors.StoreError as exc:
            raise StepFailed(
                "SOURCE_ERROR", f"Source table {table}: {exc}", {"table": table}
            ) from None
        except Exception as exc:  # noqa: BLE001 - drivers' own errors
            if self.cancelled.is_set():
                raise Cancelled() from None
            reason = connectors.driver_reason(exc, store)
            raise StepFailed(
                "SOURCE_ERROR", f"Source table {table}: {reason}", {"table": table}
            ) from None

    def _snapshot(self, connection: Any, path: str) -> str | None:
        """A DuckDB source, copied once per run and attached read-only: a snapshot at the
        speed of a file copy, where copying its tables row by row took seconds. None when
        the job folder's disk has no room for two copies of the file (then tables are
        copied row by row, as before).

        The copy is made while the source is attached read-only, so no writer holds it
        (DuckDB's file lock) and the file and its WAL agree; the source is held only for
        the copy, and every transform reads the same data. Tables and views of the file
        that the flow does not name are dropped from the copy (unless it reads a view,
        which may need them), so user SQL could not reach them even past the parser,
        which refuses qualified names; nothing can be attached after ``lock``."""
        real = os.path.realpath(path)  # one copy per file, and the file that was locked
        if real in self._snapshots:
            return self._snapshots[real]
        wal = f"{real}.wal"
        size = os.path.getsize(real) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
        if 2 * size > shutil.disk_usage(self.scratch).free:
            return None
        alias = f"_flow_snapshot_{len(self._snapshots)}"
        copy = self.scratch / f"{alias}.duckdb"
        connection.execute(f"ATTACH {_literal(real)} AS _flow_source (READ_ONLY)")
        try:
            shutil.copyfile(real, copy)
            if os.path.exists(wal):  # a writer's last commits, not yet checkpointed
                shutil.copyfile(wal, f"{copy}.wal")
        finally:
            connection.execute("DETACH _flow_source")
        connection.execute(f"ATTACH {_literal(str(copy))} AS {alias}")
        try:
            self._keep_only(connection, alias, self._tables_of(real))
        finally:
            connection.execute(f"DETACH {alias}")
        connection.execute(f"ATTACH {_literal(str(copy))} AS {alias} (READ_ONLY)")
        self._snapshots[real] = alias
        return alias

    def _tables_of(self, real: str) -> set[tuple[str, str]]:
        """(schema, table) of everything the flow reads from the DuckDB file ``real``."""
        wanted = set()
        for source in self.spec["sources"]:
            store = source["store"]
            if store["engine"] == "duckdb" and os.path.realpath(store["path"]) == real:
                for item in source.get("tables", []):
                    schema, _, table = item["table"].lower().rpartition(".")
                    wanted.add((schema or "main", table))
        return wanted

    @staticmethod
    def _keep_only(connection: Any, alias: str, wanted: set[tuple[str, str]]) -> None:
        db = _literal(alias)
        objects = connection.execute(
            f"SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() "
            f"WHERE database_name = {db} UNION ALL "
            f"SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() "
            f"WHERE database_name = {db} AND NOT internal"
        ).fetchall()
        named = {(s.lower(), t.lower()): kind for s, t, kind in objects}
        if any(named.get(key) == "VIEW" for key in wanted):
            return
        for (schema, table), kind in named.items():
            if (schema, table) not in wanted:
                connection.execute(f"DROP {kind} {alias}.{quote(schema)}.{quote(table)}")

    def _ingest_files(self, connection: Any, store: dict[str, Any], item: dict[str, Any]) -> int:
        try:
            if store["path"].startswith("s3://"):
                into = self.scratch / f"s3-{item['name']}"
                into.mkdir(exist_ok=True)
                paths = flow_ingest.s3_files(store, item["pattern"], into)
            else:
                paths = flow_ingest.local_files(store["path"], item["pattern"])
            if not paths:
                raise connectors.StoreError(f"No file matches {item['pattern']}")
            return flow_ingest.load_csv(connection, item["name"], paths, None)
        except (Cancelled, duckdb.InterruptException):
            raise
        except (connectors.StoreError, duckdb.Error, OSError) as exc:
            message = str(exc).splitlines()[0][:1000]
            raise StepFailed(
                "SOURCE_ERROR",
                f"Source files {item['pattern']}: {message}",
                {"files": item["pattern"]},
            ) from None

    def lock(self, connection: Any) -> None:
        """From here on user SQL runs: no files, no URLs, no new databases, no settings."""
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")

    def transform(self, connection: Any) -> None:
        sql_of = {t["name"].lower(): t["sql"] for t in self.spec["transforms"]}
        for name in self.spec["order"]:
            sql = sql_of[name].rstrip().rstrip(";")  # leading lines kept: errors count them
            self._run_step(
                flow_steps.transform_step(name),
                lambda n=name, s=sql: self._create(connection, n, s),
            )

    def _create(self, connection: Any, name: str, sql: str) -> int:
        try:
            connection.execute(f"CREATE TABLE {quote(name)} AS\n{sql}")
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise StepFailed("SQL_ERROR", *_sql_error(name, exc)) from None
        return connection.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def check(self, connection: Any) -> list[dict[str, Any]]:
        failures = []
        checks = self.spec["checks"]
        for check, step_name in zip(checks, flow_steps.check_steps(checks), strict=True):
            label = flow_steps.check_label(check)

            def work(c: dict[str, Any] = check, label: str = label) -> int:
                bad, message = _run_check(connection, c)
                if message:
                    failures.append({"check": label, "message": message, "rows": bad})
                    raise StepFailed("CHECK_FAILED", message)
                return bad

            try:
                self._run_step(step_name, work)
            except StepFailed as exc:
                log(f"{step_name}: FAILED: {exc.message}")
        return failures

    def publish(self) -> None:
        target = self.spec["target"]
        persisted = [t["name"].lower() for t in self.spec["transforms"] if t.get("persist")]

        def work() -> int:
            try:
                if target["engine"] == "duckdb":
                    flow_publish.to_duckdb(
                        self.work_path, Path(target["path"]), persisted, self.set_connection
                    )
                elif target["engine"] == "postgresql":
                    flow_publish.to_postgres(
                        self.work_path, target, persisted, self.scratch,
                        self.run_id.replace("-", "")[:8], self.remote, self.set_connection,
                    )  # fmt: skip
                else:
                    flow_publish.to_csv_folder(
                        self.work_path, Path(target["path"]), persisted, self.run_id,
                        self.manifest(), self.set_connection,
                    )  # fmt: skip
            except duckdb.InterruptException:
                raise
            except Exception as exc:  # noqa: BLE001 - every target's driver errors
                if self.cancelled.is_set():
                    raise Cancelled() from None
                reason = connectors.driver_reason(exc, target)
                raise StepFailed(
                    "PUBLISH_ERROR", f"Publishing to the target failed: {reason}", {}
                ) from None
            # Rows published: the persisted transforms' rows together.
            return sum(
                self._step(flow_steps.transform_step(name))["rows"] or 0 for name in persisted
            )

        self._run_step(flow_steps.PUBLISH, work)

    def manifest(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "flow_input_id": self.spec.get("flow_input_id"),
            "started_at": self.started,
            "elapsed_seconds": round(time.time() - self.started, 3),
            "result": self.result,
            "steps": self.steps,
            "published": [t["name"] for t in self.spec["transforms"] if t.get("persist")],
        }

    def _write_manifest(self) -> None:
        (self.root / MANIFEST).write_text(json.dumps(self.manifest(), indent=2, default=str))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _run_check(connection: Any, check: dict[str, Any]) -> tuple[int, str | None]:
    """(offending rows, failure message or None) of one data check."""
    table = quote(check["table"].lower())
    kind = check["type"]
    if kind == "not_null":
        column = quote(check["column"])
        bad = connection.execute(f"SELECT count(*) FROM {table} WHERE {column} IS NULL").fetchone()[
            0
        ]
        return bad, f"{check['table']}.{check['column']} has {bad} NULL value(s)" if bad else None
    if kind == "unique":
        columns = check.get("columns") or [check["column"]]
        listed = ", ".join(quote(c) for c in columns)
        bad = connection.execute(
            f"SELECT count(*) FROM (SELECT {listed} FROM {table} GROUP BY {listed} "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
        return bad, (
            f"{check['table']}.({', '.join(columns)}) has {bad} duplicated value(s)"
            if bad
            else None
        )
    if kind == "accepted_values":
        column = quote(check["column"])
        values = ", ".join(_literal(str(v)) for v in check["values"])
        bad = connection.execute(
            f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL "
            f"AND CAST({column} AS VARCHAR) NOT IN ({values})"
        ).fetchone()[0]
        return bad, (
            f"{check['table']}.{check['column']} has {bad} value(s) outside the accepted ones"
            if bad else None
        )  # fmt: skip
    count = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    low, high = check.get("min"), check.get("max")
    if (low is not None and count < low) or (high is not None and count > high):
        return count, f"{check['table']} has {count} rows, expected [{low}, {high}]"
    return 0, None


def _sql_error(name: str, exc: Exception) -> tuple[str, dict[str, Any]]:
    """The engine's message with the line and column in the transform's own SQL."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    details: dict[str, Any] = {"transform": name, "line": None, "column": None}
    found = _LINE.search(text)
    if found:
        line = int(found.group(1)) - 1  # the CREATE TABLE line we put in front
        details["line"] = max(line, 1)
        rest = text[found.end() :].splitlines()
        caret = rest[1] if len(rest) > 1 and "^" in rest[1] else None
        if caret is not None:
            prefix = len(f"LINE {found.group(1)}: ")
            details["column"] = max(caret.index("^") - prefix + 1, 1)
    where = f" (line {details['line']}, column {details['column']})" if details["line"] else ""
    return f"Transform {name}{where}: {first}", details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", required=True)
    parser.add_argument("--run", required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    root = Path(args.job)
    spec_path = root / SPEC_FILE
    spec = json.loads(spec_path.read_text())
    spec_path.unlink()  # the connection info lives in memory only from here
    engine = FlowEngine(spec, root, args.run)
    signal.signal(signal.SIGINT, lambda *_: engine.interrupt())
    signal.signal(signal.SIGTERM, lambda *_: engine.interrupt())
    worker = threading.Thread(target=engine.run, name="flow", daemon=True)
    worker.start()
    ticks = 0
    while worker.is_alive():
        worker.join(0.1)  # signal handlers run here, between joins
        ticks += 1
        if ticks % 10 == 0 and not engine.cancelled.is_set():
            engine.report_query_progress()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    sys.exit(main())
