"""Copy a flow's sources into its working DuckDB database, through Python drivers.

Each server table is streamed to a CSV file in the job folder (PostgreSQL with COPY, the
others row by row in batches) and loaded by DuckDB's CSV reader with the column types the
server declared. No DuckDB extension is needed, so nothing is downloaded at run time.
While a server query runs, ``Remote.cancel`` stops it on the server (pg_cancel_backend,
KILL QUERY) from another thread.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.flows import connectors
from app.flows.identifiers import quote

NULL = "\\N"
# PostgreSQL type OIDs -> DuckDB types (anything else is read as text).
PG_TYPES = {
    16: "BOOLEAN", 20: "BIGINT", 21: "SMALLINT", 23: "INTEGER", 700: "REAL",
    701: "DOUBLE", 1700: "DOUBLE", 1082: "DATE", 1114: "TIMESTAMP", 1184: "TIMESTAMPTZ",
    1083: "TIME",
}  # fmt: skip
# pymysql FIELD_TYPE codes -> DuckDB types.
MYSQL_TYPES = {
    0: "DOUBLE", 246: "DOUBLE", 1: "INTEGER", 2: "INTEGER", 3: "BIGINT", 4: "REAL",
    5: "DOUBLE", 8: "BIGINT", 9: "INTEGER", 10: "DATE", 7: "TIMESTAMP", 12: "TIMESTAMP",
    11: "TIME", 13: "INTEGER",
}  # fmt: skip


class Remote:
    """The server connection a query is running on, and how to cancel it from elsewhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel: Callable[[], None] | None = None

    def set(self, cancel: Callable[[], None] | None) -> None:
        with self._lock:
            self._cancel = cancel

    def cancel(self) -> None:
        with self._lock:
            cancel = self._cancel
        if cancel is not None:
            with contextlib.suppress(Exception):
                cancel()


def canceller(store: dict[str, Any], connection: Any) -> Callable[[], None]:
    """A function that cancels what ``connection`` runs, from a new connection."""
    engine = store["engine"]
    if engine == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        connection.commit()

        def cancel_pg() -> None:
            with contextlib.closing(connectors.connect(store)) as other:
                other.autocommit = True
                with other.cursor() as cursor:
                    cursor.execute("SELECT pg_cancel_backend(%s)", (pid,))

        return cancel_pg
    if engine == "mysql":
        thread_id = connection.thread_id()

        def cancel_mysql() -> None:
            with contextlib.closing(connectors.connect(store)) as other:
                with other.cursor() as cursor:
                    cursor.execute(f"KILL QUERY {int(thread_id)}")

        return cancel_mysql
    return connection.interrupt  # sqlite3: thread-safe


def _qualified(table: str, engine: str) -> str:
    if engine == "mysql":
        return ".".join("`" + part.replace("`", "``") + "`" for part in table.split("."))
    return ".".join(quote(part) for part in table.split("."))


def _write_rows(cursor: Any, path: Path, batch: int) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                break
            writer.writerows([NULL if v is None else v for v in row] for row in rows)


def _sqlite_types(connection: Any, table: str) -> dict[str, str]:
    rows = connection.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    types = {}
    for row in rows:
        declared = (row[2] or "").upper()
        if "INT" in declared:
            types[row[1]] = "BIGINT"
        elif any(word in declared for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
            types[row[1]] = "DOUBLE"
        else:
            types[row[1]] = "VARCHAR"
    return types


def server_table_to_csv(
    store: dict[str, Any], table: str, path: Path, remote: Remote, batch: int
) -> dict[str, str]:
    """Stream ``table`` into a headerless CSV at ``path``; return its column types."""
    engine = store["engine"]
    connection = connectors.connect(store)
    try:
        remote.set(canceller(store, connection))
        qualified = _qualified(table, engine)
        if engine == "sqlite":
            types = _sqlite_types(connection, table)
            cursor = connection.execute(f"SELECT * FROM {qualified}")
            _write_rows(cursor, path, batch)
            return types
        if engine == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {qualified} LIMIT 0")
                types = {d.name: PG_TYPES.get(d.type_code, "VARCHAR") for d in cursor.description}
                with open(path, "w") as stream:
                    cursor.copy_expert(
                        f"COPY (SELECT * FROM {qualified}) TO STDOUT WITH (FORMAT csv, NULL '\\N')",
                        stream,
                    )
            connection.rollback()
            return types
        import pymysql.cursors

        with connection.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(f"SELECT * FROM {qualified}")
            types = {d[0]: MYSQL_TYPES.get(d[1], "VARCHAR") for d in cursor.description}
            _write_rows(cursor, path, batch)
        return types
    finally:
        remote.set(None)
        with contextlib.suppress(Exception):
            connection.close()


def load_csv(connection: Any, name: str, paths: list[Path], types: dict[str, str] | None) -> int:
    """Create table ``name`` in the working database from CSV files; return its rows."""
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
    if types is None:  # a user's CSV files: header and types detected
        reader = f"read_csv({files}, header = true, union_by_name = true)"
    else:
        columns = ", ".join("'" + c.replace("'", "''") + "': '" + t + "'" for c, t in types.items())
        reader = (
            f"read_csv({files}, header = false, columns = {{{columns}}}, nullstr = '\\N', "
            "quote = '\"', escape = '\"', delim = ',', auto_detect = false)"
        )
    connection.execute(f"CREATE TABLE {quote(name)} AS SELECT * FROM {reader}")
    return connection.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]


def local_files(folder: str, pattern: str) -> list[Path]:
    """Files under ``folder`` that match ``pattern`` (relative), never outside it."""
    root = Path(folder).resolve()
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and fnmatch.fnmatch(relative, pattern):
            resolved = path.resolve()
            if root in resolved.parents:
                found.append(resolved)
    return found


def s3_files(store: dict[str, Any], pattern: str, into: Path) -> list[Path]:
    """Download the objects under the store's prefix that match ``pattern`` into ``into``."""
    from urllib.parse import urlparse

    parsed = urlparse(store["path"])
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = connectors.s3_client(store)
    paths = []
    for index, (relative, _size) in enumerate(connectors.s3_objects(store, pattern)):
        target = into / f"{index:05d}.csv"
        client.download_file(parsed.netloc, prefix + relative, str(target))
        paths.append(target)
    return paths
