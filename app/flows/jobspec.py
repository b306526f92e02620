"""What a flow worker gets when it claims a run: the flow input with each store's
connection info, passwords decrypted. Only the claim answer (worker key, that run's
attempt) carries it; it is never stored in the run or logged."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.extensions import db
from app.flows import queries
from app.flows.passwords import SecretUnreadable
from app.flows.services import connection_info
from app.runs.models import JobUnavailable
from app.runs.states import ErrorType


def job_spec(run: Any) -> dict[str, Any]:
    """The claim's job; JobUnavailable (the run fails) if a store's password cannot be
    decrypted with the current key."""
    settings = current_app.config["SETTINGS"]
    flow_input = run.flow_input
    ids = {s["store_id"] for s in flow_input.sources} | {flow_input.target_store_id}
    stores = queries.stores_by_id(db.session, ids)
    try:
        sources = [
            {**source, "store": connection_info(stores[source["store_id"]], settings)}
            for source in flow_input.sources
        ]
        target = connection_info(stores[flow_input.target_store_id], settings)
    except SecretUnreadable as exc:
        raise JobUnavailable(
            ErrorType.PASSWORD_UNREADABLE, str(exc), {"store_id": exc.store_id}
        ) from None
    return {
        "flow_input_id": flow_input.id,
        "sources": sources,
        "target": target,
        "transforms": flow_input.transforms,
        "order": flow_input.order,
        "checks": flow_input.checks,
        "ingest_batch_rows": settings.FLOWS_INGEST_BATCH_ROWS,
    }
