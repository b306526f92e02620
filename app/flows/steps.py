"""A flow's steps, named once for the API, the page and the engine.

A flow is a fixed list of steps (each source ingested, each transform, each check, the
publish). The API shows them PENDING as soon as a flow is created, the engine reports
each one's state, rows and seconds under the same names, and the page draws them as a
graph: which step feeds which is derived here from the flow input's SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PUBLISH = "publish"


def source_table_name(item: Mapping[str, Any]) -> str:
    """How SQL names a source table: its ``name``, or the table without its schema."""
    return item.get("name") or item["table"].rsplit(".", 1)[-1]


def source_names(sources: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every source table and file set of a flow input, in the order they are ingested."""
    names: list[str] = []
    for source in sources:
        names.extend(source_table_name(item) for item in source.get("tables", []))
        names.extend(item["name"] for item in source.get("files", []))
    return names


def ingest_step(source_name: str) -> str:
    return f"ingest {source_name}"


def transform_step(transform_name: str) -> str:
    return f"transform {transform_name}"


def check_label(check: Mapping[str, Any]) -> str:
    """What a check tests, said briefly: ``unique billing.meter_id``."""
    what = check.get("column") or ",".join(check.get("columns") or []) or ""
    return f"{check['type']} {check['table']}" + (f".{what}" if what else "")


def check_steps(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each check's step name, unique: two checks that read alike (a row count's minimum and
    its maximum given apart) are told apart by their position, ``(2)``."""
    names: list[str] = []
    for check in checks:
        name = f"check {check_label(check)}"
        repeats = sum(1 for earlier in names if earlier.split(" (")[0] == name)
        names.append(f"{name} ({repeats + 1})" if repeats else name)
    return names


def step(name: str, kind: str) -> dict[str, Any]:
    """A step as the API shows it, before it runs."""
    return {"name": name, "kind": kind, "state": "PENDING", "rows": None, "seconds": None,
            "message": None}  # fmt: skip


def plan(
    sources: Sequence[Mapping[str, Any]],
    order: Sequence[str],
    checks: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The steps of a flow, PENDING, in the order the engine runs them."""
    return [
        *(step(ingest_step(name), "ingest") for name in source_names(sources)),
        *(step(transform_step(name), "transform") for name in order),
        *(step(name, "check") for name in check_steps(checks)),
        step(PUBLISH, "publish"),
    ]


def step_graph(
    sources: Sequence[Mapping[str, Any]],
    transforms: Sequence[Mapping[str, Any]],
    order: Sequence[str],
    checks: Sequence[Mapping[str, Any]],
) -> list[tuple[str, list[str]]]:
    """Each step with the steps it reads from, in run order (so upstream comes first).

    A transform reads the sources and transforms its SQL names; a check reads its table;
    the publish waits for the persisted transforms and every check.
    """
    from app.flows import sql  # here: the engine imports this module and needs no parser

    ingest_of = {name.lower(): ingest_step(name) for name in source_names(sources)}
    transform_of = {name: transform_step(name) for name in order}
    sql_of = {t["name"].lower(): t["sql"] for t in transforms}
    nodes: list[tuple[str, list[str]]] = [(name, []) for name in ingest_of.values()]
    for name in order:
        reads = [table for table, _ in sql.tables_read(sql.parse_query(sql_of[name]))]
        upstream = {transform_of.get(table) or ingest_of.get(table) for table in reads}
        nodes.append((transform_of[name], [n for n, _ in nodes if n in upstream]))
    checked = check_steps(checks)
    for check, name in zip(checks, checked, strict=True):
        table = check["table"].lower()
        nodes.append((name, [u for u in (transform_of.get(table) or ingest_of.get(table),) if u]))
    persisted = [transform_of[t["name"].lower()] for t in transforms if t.get("persist")]
    nodes.append((PUBLISH, persisted + checked))
    return nodes
