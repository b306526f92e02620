"""Domain errors and the one JSON error shape: ``{"message": ..., "errors": {...}}``.

Services raise these; ``register_error_handlers`` turns each into its HTTP status, so no
route decides a status code for a failure by itself.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from app.extensions import db


class DomainError(Exception):
    """Base of errors a client can act on; ``status`` is the HTTP answer."""

    status = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """The request is valid but the resource's current state forbids it."""

    status = 409


class ValidationFailed(DomainError):
    status = 422


def error_response(status: int, message: str, errors: dict[str, Any] | None = None) -> Response:
    response = jsonify({"message": message, "errors": errors or {}})
    response.status_code = status
    return response


def _handle_domain_error(error: DomainError) -> Response:
    db.session.rollback()
    return error_response(error.status, error.message, error.errors)


def _handle_http_exception(error: HTTPException) -> Response:
    db.session.rollback()
    # flask-smorest/webargs attach field errors as ``data["messages"]``.
    data = getattr(error, "data", None) or {}
    errors = data.get("messages") or {}
    message = data.get("message") or error.description or error.name
    if errors:
        prefix = "Validation failed" if error.code == 422 else "Bad request"
        message = f"{prefix}: {_summarize(errors)}"
    response = error_response(error.code or 500, message, errors)
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    return response


def _summarize(errors: dict[str, Any], prefix: str = "") -> str:
    """Flatten ``{"json": {"name": ["Missing data"]}}`` into ``name: Missing data``."""
    parts: list[str] = []
    for key, value in errors.items():
        # The top level of webargs errors is the location (json, query...), not a field.
        path = "" if key in {"json", "query", "headers"} and not prefix else f"{prefix}{key}"
        if isinstance(value, dict):
            parts.append(_summarize(value, f"{path}." if path else ""))
        else:
            text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            parts.append(f"{path or key}: {text}")
    return ", ".join(p for p in parts if p)


def _handle_unexpected(error: Exception) -> Response:
    db.session.rollback()
    current_app.logger.exception("Unhandled error", exc_info=error)
    return error_response(500, "Internal server error")


def register_error_handlers(app: Flask) -> None:
    """Answer every error with the JSON shape above and the right status."""
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
