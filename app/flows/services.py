"""Writes of the flows domain. Functions flush, never commit: the route owns the
transaction. Everything checkable about a flow input is checked here, before it exists."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import Conflict, ErrorCode, ValidationFailed
from app.flows import connectors, locations, passwords, queries, sql
from app.flows import steps as flow_steps
from app.flows.models import (
    SERVER_ENGINES,
    DataStore,
    Engine,
    FlowInput,
    FlowInputStore,
    FlowRun,
)
from app.runs.services import add_new, check_attempt, lock_run

#: Engines a flow can publish to (atomically: see docs/adr/0016-atomic-publish.md).
TARGET_ENGINES = (Engine.DUCKDB, Engine.POSTGRESQL, Engine.CSV)


def _location_problems(data: dict[str, Any], settings: Settings) -> dict[str, list[str]]:
    engine = data["engine"]
    if engine in SERVER_ENGINES:
        problem = locations.host_problem(settings, data["host"], data.get("port"), data["database"])
        return {"host": [problem]} if problem else {}
    path = data["path"]
    if path.startswith("s3://"):
        if engine is not Engine.CSV:
            return {"path": ["Only csv stores can be in S3"]}
        problem = locations.s3_prefix_problem(settings, path)
    elif "://" in path:
        problem = "A local path, or s3://bucket/prefix/ for csv"
    else:
        problem = locations.path_problem(settings, path)
    return {"path": [problem]} if problem else {}


def _apply_store(store: DataStore, data: dict[str, Any], settings: Settings) -> None:
    errors = _location_problems(data, settings)
    if errors:
        field, messages = next(iter(errors.items()))
        raise ValidationFailed(f"Invalid {field}: {messages[0]}", {"json": errors})
    for field in ("name", "type", "engine", "host", "port", "user", "database"):
        setattr(store, field, data.get(field))
    path = data.get("path")
    if path and not path.startswith("s3://"):
        path = str(locations.resolve_path(settings, path))
    store.path = path
    if data.get("password"):
        store.password_encrypted = passwords.encrypt(settings, data["password"])
    elif data["engine"] not in SERVER_ENGINES:
        store.password_encrypted = None


def create_store(session: Session, data: dict[str, Any], settings: Settings) -> DataStore:
    store = DataStore()
    _apply_store(store, data, settings)
    session.add(store)
    session.flush()
    return store


def update_store(
    session: Session, store: DataStore, data: dict[str, Any], settings: Settings
) -> None:
    """Replace the store's description; an omitted password keeps the stored one."""
    _apply_store(store, data, settings)
    session.flush()


def delete_store(session: Session, store: DataStore) -> None:
    users = queries.inputs_using(session, store.id)
    if users:
        raise Conflict(
            "The data store is used by flow inputs",
            {"store_id": [f"Used by flow inputs {', '.join(sorted(users)[:20])}"]},
            ErrorCode.CONFLICT,
        )
    session.delete(store)
    session.flush()


def _password(store: DataStore, settings: Settings) -> str | None:
    """The store's password decrypted; SecretUnreadable naming the store (never the secret)
    when the key has changed since it was stored."""
    if not store.password_encrypted:
        return None
    try:
        return passwords.decrypt(settings, store.password_encrypted)
    except passwords.SecretUnreadable:
        raise passwords.SecretUnreadable(
            f"The password of data store {store.name} ({store.id}) cannot be decrypted with "
            f"the current FLOWS_SECRET_KEY; set it again (PUT /data-stores/{store.id})",
            store.id,
        ) from None


def connection_info(store: DataStore, settings: Settings) -> dict[str, Any]:
    """What a connection needs, password decrypted: only for a test or a claimed run."""
    info: dict[str, Any] = {
        "id": store.id,
        "engine": store.engine.value,
        "host": store.host,
        "port": store.port,
        "user": store.user,
        "database": store.database,
        "path": store.path,
        "password": _password(store, settings),
    }
    if store.path and store.path.startswith("s3://"):
        info["s3"] = {
            "endpoint_url": settings.S3_ENDPOINT_URL,
            "access_key_id": settings.S3_ACCESS_KEY_ID,
            "secret_access_key": settings.S3_SECRET_ACCESS_KEY,
            "region_name": settings.S3_REGION_NAME,
        }
    return info


def test_store(store: DataStore, settings: Settings) -> list[str]:
    """Connect and list what the store can give; 422 with the driver's reason otherwise."""
    errors = _location_problems(
        {"engine": store.engine, "host": store.host, "port": store.port,
         "database": store.database, "path": store.path},
        settings,
    )  # fmt: skip
    if errors:  # the deployment's rules changed since the store was made
        field, messages = next(iter(errors.items()))
        raise ValidationFailed(f"Invalid {field}: {messages[0]}", {"json": errors})
    try:
        return connectors.list_tables(connection_info(store, settings))
    except passwords.SecretUnreadable as exc:
        raise ValidationFailed(str(exc), {"password": [str(exc)]}) from None
    except connectors.StoreError as exc:
        raise ValidationFailed(
            f"Cannot read the data store: {exc}", {"store_id": [str(exc)]}
        ) from None


# --- flow inputs ----------------------------------------------------------------------


def _source_tables(
    data: dict[str, Any], stores: dict[str, DataStore], errors: dict[str, Any]
) -> list[str]:
    names: list[str] = []
    for index, source in enumerate(data["sources"]):
        store = stores.get(source["store_id"])
        where = errors.setdefault("sources", {}).setdefault(str(index), {})
        if store is None:
            where["store_id"] = [f"No data store {source['store_id']}"]
            continue
        if store.engine is Engine.CSV and source["tables"]:
            where["tables"] = ["A csv store gives files: name them in files"]
        if store.engine is not Engine.CSV and source["files"]:
            where["files"] = ["A database store gives tables: name them in tables"]
        for item in source["tables"]:
            names.append(flow_steps.source_table_name(item).lower())
        names.extend(item["name"].lower() for item in source["files"])
    return names


def _duplicates(source_names: list[str], transform_names: list[str]) -> list[str]:
    found, seen = [], set()
    for index, name in enumerate(source_names + transform_names):
        if name in seen:
            field = "transforms" if index >= len(source_names) else "sources"
            found.append(f"{name}: the name is used twice ({field})")
        seen.add(name)
    return found


def _graph_problems(
    data: dict[str, Any], source_names: list[str], errors: dict[str, Any]
) -> dict[str, list[str]]:
    """Parse every transform; put each one's problem (or a cycle) into ``errors``."""
    edges, problems = sql.graph(
        [(t["name"], t["sql"]) for t in data["transforms"]], set(source_names)
    )
    for index, transform in enumerate(data["transforms"]):
        problem = problems.get(transform["name"])
        if problem is not None:
            errors.setdefault("transforms", {})[str(index)] = {
                "sql": [f"transform {transform['name']}: {problem}"]
            }
    if not problems:
        cycle = sql.find_cycle(edges)
        if cycle:
            errors["_graph"] = [f"cycle: {' -> '.join(cycle)}"]
    return edges


def _check_problems(data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for index, check in enumerate(data["checks"]):
        if check["table"].lower() not in known:
            found[str(index)] = {"table": [f"{check['table']} is not a transform or source table"]}
    return found


def validate_flow_input(session: Session, data: dict[str, Any]) -> tuple[dict, list[str]]:
    """Every problem of a flow input as field errors; return its graph and run order."""
    ids = {s["store_id"] for s in data["sources"]} | {data["target_store_id"]}
    stores = queries.stores_by_id(session, ids)
    errors: dict[str, Any] = {}
    source_names = _source_tables(data, stores, errors)
    target = stores.get(data["target_store_id"])
    if target is None:
        errors["target_store_id"] = [f"No data store {data['target_store_id']}"]
    elif target.engine not in TARGET_ENGINES or (target.path or "").startswith("s3://"):
        errors["target_store_id"] = [
            "A target is a duckdb file, a postgresql database or a local csv folder"
        ]
    transform_names = [t["name"].lower() for t in data["transforms"]]
    errors["_names"] = _duplicates(source_names, transform_names)
    edges = _graph_problems(data, source_names, errors)
    check_errors = _check_problems(data, set(source_names) | set(transform_names))
    if check_errors:
        errors["checks"] = check_errors
    errors = {k: v for k, v in errors.items() if v and (not isinstance(v, dict) or any(v.values()))}
    if "sources" in errors:
        errors["sources"] = {k: v for k, v in errors["sources"].items() if v}
    if errors:
        raise ValidationFailed(f"Invalid flow input: {_first_message(errors)}", {"json": errors})
    return edges, sql.run_order(edges)


def _first_message(errors: dict[str, Any]) -> str:
    value: Any = errors
    while isinstance(value, dict):
        value = next(iter(value.values()))
    return value[0] if isinstance(value, list) else str(value)


def create_flow_input(session: Session, data: dict[str, Any], settings: Settings) -> FlowInput:
    edges, order = validate_flow_input(session, data)
    flow_input = FlowInput(
        name=data["name"],
        sources=data["sources"],
        target_store_id=data["target_store_id"],
        transforms=data["transforms"],
        checks=data["checks"],
        graph=edges,
        order=order,
        timeout_seconds=data.get("timeout_seconds") or settings.DEFAULT_TIMEOUT_SECONDS,
    )
    session.add(flow_input)
    session.flush()
    store_ids = {s["store_id"] for s in data["sources"]} | {data["target_store_id"]}
    session.add_all(FlowInputStore(flow_input_id=flow_input.id, store_id=i) for i in store_ids)
    session.flush()
    return flow_input


# --- runs -----------------------------------------------------------------------------


def create_run(session: Session, data: dict[str, Any]) -> FlowRun:
    flow_input = session.get(FlowInput, data["flow_input_id"])
    if flow_input is None:
        raise ValidationFailed(
            "Unknown flow input",
            {"json": {"flow_input_id": [f"No flow input {data['flow_input_id']}"]}},
        )
    run = FlowRun(
        flow_input_id=flow_input.id,
        callback_url=data.get("callback_url"),
        timeout_seconds=flow_input.timeout_seconds,
        max_retries=0,
        steps=flow_steps.plan(flow_input.sources, flow_input.order, flow_input.checks),
    )
    add_new(session, run)
    session.flush()
    return run


def record_steps(session: Session, run_id: str, attempt: int, steps: list[dict]) -> None:
    run = lock_run(session, run_id, FlowRun)
    check_attempt(run, attempt)
    run.steps = steps
    session.flush()
