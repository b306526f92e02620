"""Quoting identifiers, apart from the SQL parser so the flow engine starts without it."""

from __future__ import annotations


def quote(name: str) -> str:
    """An identifier quoted for DuckDB (and PostgreSQL, SQLite: the same rule)."""
    return '"' + name.replace('"', '""') + '"'
