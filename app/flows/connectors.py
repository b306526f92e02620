"""Connections to data stores, shared by the API (``/test``) and the flow engine.

A store is described by a plain dict (``engine``, ``host``, ``port``, ``user``,
``password``, ``database``, ``path``), so the worker side needs no database model. Server
engines are reached through their Python drivers (psycopg2, pymysql): DuckDB's scanner
extensions would be downloaded at run time, which these machines cannot do.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONNECT_TIMEOUT = 10


class StoreError(Exception):
    """The store cannot be reached or read; the message is the driver's reason."""


def _pg(store: dict[str, Any]) -> Any:
    import psycopg2

    return psycopg2.connect(
        host=store["host"],
        hostaddr=store.get("address") or None,  # the address the worker checked
        port=store.get("port") or 5432,
        user=store.get("user") or None,
        password=store.get("password") or None,
        dbname=store.get("database") or None,
        connect_timeout=CONNECT_TIMEOUT,
        application_name="jobs-flow",
    )


def _mysql(store: dict[str, Any]) -> Any:
    import pymysql

    return pymysql.connect(
        host=store.get("address") or store["host"],  # the address the worker checked
        port=store.get("port") or 3306,
        user=store.get("user") or "",
        password=store.get("password") or "",
        database=store.get("database") or None,
        connect_timeout=CONNECT_TIMEOUT,
        autocommit=False,
    )


def connect(store: dict[str, Any]) -> Any:
    """A DB-API connection to a relational store; StoreError with the driver's reason."""
    try:
        if store["engine"] == "postgresql":
            return _pg(store)
        if store["engine"] == "mysql":
            return _mysql(store)
        if store["engine"] == "sqlite":
            path = Path(store["path"])
            if not path.is_file():
                raise StoreError(f"No SQLite file at {store['path']}")
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - every driver has its own error classes
        raise StoreError(driver_reason(exc, store)) from None
    raise StoreError(f"Not a relational engine: {store['engine']}")


def driver_reason(exc: BaseException, store: dict[str, Any]) -> str:
    """The driver's message, first line, with the password (if echoed) blanked out."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = store.get("password")
    if password:
        text = text.replace(password, "***")
    return text[:1000]


def list_tables(store: dict[str, Any]) -> list[str]:
    """What the store can give a flow: its tables, or its CSV files."""
    engine = store["engine"]
    if engine == "csv":
        return list_csv(store)
    if engine == "duckdb":
        return _duckdb_tables(Path(store["path"]))
    with contextlib.closing(connect(store)) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(_LIST_SQL[engine])
            return [row[0] for row in cursor.fetchall()]
        except Exception as exc:  # noqa: BLE001
            raise StoreError(driver_reason(exc, store)) from None


_LIST_SQL = {
    "postgresql": "SELECT table_schema || '.' || table_name FROM information_schema.tables "
    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    "mysql": "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = DATABASE() ORDER BY 1",
    "sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY 1",
}


def _duckdb_tables(path: Path) -> list[str]:
    import duckdb

    if not path.exists():
        return []  # a target that has never been written
    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            rows = connection.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1"
            ).fetchall()
    except duckdb.Error as exc:
        raise StoreError(str(exc).splitlines()[0]) from None
    return [row[0] for row in rows]


def list_csv(store: dict[str, Any]) -> list[str]:
    path = store["path"]
    if path.startswith("s3://"):
        return [key for key, _ in s3_objects(store, "*.csv")]
    folder = Path(path)
    if not folder.is_dir():
        raise StoreError(f"No folder at {path}")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv"))


def s3_objects(store: dict[str, Any], pattern: str) -> Iterator[tuple[str, int]]:
    """(key relative to the prefix, size) of the objects under the store's prefix that
    match ``pattern``; read with the worker's own S3 credentials (allowed buckets only)."""
    from urllib.parse import urlparse

    client = s3_client(store)
    parsed = urlparse(store["path"])
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=parsed.netloc, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if fnmatch.fnmatch(relative, pattern):
                    yield relative, item["Size"]
    except Exception as exc:  # noqa: BLE001 - botocore's errors
        raise StoreError(str(exc).splitlines()[0][:500]) from None


def s3_client(store: dict[str, Any]) -> Any:
    import boto3

    options = store.get("s3") or {}
    return boto3.client(
        "s3",
        endpoint_url=options.get("endpoint_url") or None,
        aws_access_key_id=options.get("access_key_id") or None,
        aws_secret_access_key=options.get("secret_access_key") or None,
        region_name=options.get("region_name") or "us-east-1",
    )
