"""``/healthcheck`` (the process answers) and ``/readiness`` (its dependencies answer)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields
from sqlalchemy import text

from app.blueprint import Blueprint
from app.extensions import db

blp = Blueprint("health", __name__, description="Liveness and readiness (no key needed).")


class HealthSchema(Schema):
    status = fields.String()


class ReadinessSchema(Schema):
    status = fields.String()
    checks = fields.Dict(keys=fields.String(), values=fields.String())


@blp.route("/healthcheck")
@blp.response(200, HealthSchema)
@blp.doc(operationId="getLiveness", security=[])
def healthcheck() -> dict[str, str]:
    """Liveness: the API process is up."""
    return {"status": "ok"}


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def _check_broker() -> str:
    client = current_app.extensions["celery_client"]
    try:
        with client.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"


@blp.route("/readiness")
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ReadinessSchema, description="A dependency is down")
@blp.doc(operationId="getReadiness", security=[])
def readiness() -> Any:
    """Readiness: the database and the broker answer."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ready = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
