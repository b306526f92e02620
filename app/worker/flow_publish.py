"""Publish a flow's persisted tables to its target, all or nothing.

- DuckDB file: one transaction in the target that replaces every table.
- PostgreSQL: each table is loaded into a staging table, then the old tables are dropped
  and the staging tables renamed, all inside one transaction: readers see the old set
  until the commit, the new set after it; a failure, a cancel or a killed worker rolls
  it all back.
- CSV folder: the files and a manifest are written into a hidden folder, renamed to the
  run's folder, and the ``current`` link is swapped to it with one atomic rename.

The working database is opened read-only by a fresh connection here: the one that ran
user SQL stays locked (no external access) and is already closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from app.flows import connectors
from app.flows.identifiers import quote
from app.worker.flow_ingest import Remote, canceller

PG_TYPES = {
    "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "TINYINT": "smallint",
    "HUGEINT": "numeric", "UBIGINT": "numeric", "UINTEGER": "bigint", "USMALLINT": "integer",
    "UTINYINT": "smallint", "DOUBLE": "double precision", "FLOAT": "real", "VARCHAR": "text",
    "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIME": "time", "INTERVAL": "interval",
}  # fmt: skip
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def _pg_type(duck_type: str) -> str:
    found = _DECIMAL.match(duck_type)
    if found:
        return f"numeric({found.group(1)},{found.group(2)})"
    return PG_TYPES.get(duck_type, "text")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def to_duckdb(
    work: Path, target: Path, tables: list[str], on_connection: Callable[[Any], None]
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(
        str(target),
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    on_connection(connection)
    try:
        connection.execute(f"ATTACH {_literal(str(work))} AS work (READ_ONLY)")
        connection.execute("BEGIN")
        for table in tables:
            connection.execute(
                f"CREATE OR REPLACE TABLE main.{quote(table)} AS "
                f"SELECT * FROM work.main.{quote(table)}"
            )
        connection.execute("COMMIT")
    finally:
        on_connection(None)
        connection.close()


def to_postgres(
    work: Path,
    store: dict[str, Any],
    tables: list[str],
    scratch: Path,
    stage_tag: str,
    remote: Remote,
    on_connection: Callable[[Any], None],
) -> None:
    source = duckdb.connect(str(work), read_only=True)
    on_connection(source)
    files: dict[str, tuple[Path, list[tuple[str, str]]]] = {}
    try:
        for table in tables:
            columns = source.execute(f"DESCRIBE {quote(table)}").fetchall()
            path = scratch / f"publish-{table}.csv"
            source.execute(
                f"COPY {quote(table)} TO {_literal(str(path))} "
                "(FORMAT csv, HEADER false, NULLSTR '\\N')"
            )
            files[table] = (path, [(c[0], c[1]) for c in columns])
    finally:
        on_connection(None)
        source.close()
    connection = connectors.connect(store)
    try:
        remote.set(canceller(store, connection))
        with connection.cursor() as cursor:
            staged = []
            for table, (path, columns) in files.items():
                stage = f"_flow_stage_{stage_tag}_{table}"[:63]
                spec = ", ".join(f"{quote(name)} {_pg_type(kind)}" for name, kind in columns)
                cursor.execute(f"CREATE TABLE {quote(stage)} ({spec})")
                with open(path) as stream:
                    cursor.copy_expert(
                        f"COPY {quote(stage)} FROM STDIN WITH (FORMAT csv, NULL '\\N')", stream
                    )
                staged.append((stage, table))
            for stage, table in staged:
                cursor.execute(f"DROP TABLE IF EXISTS {quote(table)}")
                cursor.execute(f"ALTER TABLE {quote(stage)} RENAME TO {quote(table)}")
        connection.commit()
    finally:
        remote.set(None)
        with contextlib.suppress(Exception):
            connection.rollback()
        with contextlib.suppress(Exception):
            connection.close()


def to_csv_folder(
    work: Path,
    folder: Path,
    tables: list[str],
    run_id: str,
    manifest: dict[str, Any],
    on_connection: Callable[[Any], None],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".tmp-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    source = duckdb.connect(str(work), read_only=True)
    on_connection(source)
    try:
        for table in tables:
            path = staging / f"{table}.csv"
            source.execute(
                f"COPY {quote(table)} TO {_literal(str(path))} (FORMAT csv, HEADER true)"
            )
    finally:
        on_connection(None)
        source.close()
    (staging / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    final = folder / run_id
    shutil.rmtree(final, ignore_errors=True)
    os.rename(staging, final)
    link = folder / f".current-{run_id}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(run_id)
    previous = os.readlink(folder / "current") if (folder / "current").is_symlink() else None
    os.replace(link, folder / "current")  # the one atomic switch
    if previous and previous != run_id:
        shutil.rmtree(folder / previous, ignore_errors=True)
