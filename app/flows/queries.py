"""Reads of the flows domain. ``get_*`` raise NotFound."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.flows.models import DataStore, FlowInput, FlowInputStore, FlowRun
from app.pagination import paginate
from app.runs.states import RunState


def get_store(session: Session, store_id: str) -> DataStore:
    store = session.get(DataStore, store_id)
    if store is None:
        raise NotFound("Data store not found", {"store_id": [f"No data store {store_id}"]})
    return store


def list_stores(
    session: Session, limit: int, cursor: str | None
) -> tuple[Sequence[DataStore], str | None]:
    return paginate(session, select(DataStore), DataStore.created_at, DataStore.id, limit, cursor)


def stores_by_id(session: Session, ids: set[str]) -> dict[str, DataStore]:
    rows = session.scalars(select(DataStore).where(DataStore.id.in_(ids))).all()
    return {row.id: row for row in rows}


def inputs_using(session: Session, store_id: str) -> list[str]:
    return list(
        session.scalars(
            select(FlowInputStore.flow_input_id).where(FlowInputStore.store_id == store_id)
        )
    )


def get_flow_input(session: Session, flow_input_id: str) -> FlowInput:
    flow_input = session.get(FlowInput, flow_input_id)
    if flow_input is None:
        raise NotFound(
            "Flow input not found", {"flow_input_id": [f"No flow input {flow_input_id}"]}
        )
    return flow_input


def list_flow_inputs(
    session: Session, limit: int, cursor: str | None
) -> tuple[Sequence[FlowInput], str | None]:
    return paginate(session, select(FlowInput), FlowInput.created_at, FlowInput.id, limit, cursor)


def get_run(session: Session, run_id: str) -> FlowRun:
    run = session.get(FlowRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound("Flow not found", {"run_id": [f"No flow {run_id}"]})
    return run


def list_runs(
    session: Session, state: RunState | None, limit: int, cursor: str | None
) -> tuple[Sequence[FlowRun], str | None]:
    query = select(FlowRun)
    if state is not None:
        query = query.where(FlowRun.state == state)
    return paginate(session, query, FlowRun.created_at, FlowRun.id, limit, cursor)
