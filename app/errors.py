"""Domain errors and the one JSON error shape: ``{"code", "message", "errors"}``.

Services raise these; ``register_error_handlers`` turns each into its HTTP status, so no
route decides a status code for a failure by itself. ``code`` is the machine-readable
reason: clients (and the worker) branch on it, never on the status alone, because one
status covers several situations (a 409 may be a stale attempt or a log gap).
"""

from __future__ import annotations

import enum
from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from app.extensions import db


class ErrorCode(str, enum.Enum):
    """Every ``code`` an error body can carry; a contract, listed in the README."""

    BAD_REQUEST = "BAD_REQUEST"  # malformed request (JSON syntax, forbidden characters)
    UNAUTHORIZED = "UNAUTHORIZED"  # no key, or an unknown or revoked one
    FORBIDDEN = "FORBIDDEN"  # the key lacks the permission
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    VALIDATION_FAILED = "VALIDATION_FAILED"  # a field is wrong; ``errors`` says which
    CONFLICT = "CONFLICT"  # any other state conflict
    INVALID_TRANSITION = "INVALID_TRANSITION"  # the run's state does not allow the change
    RUN_ENDED = "RUN_ENDED"  # cancel of a run that already ended
    RUN_NOT_CLAIMABLE = "RUN_NOT_CLAIMABLE"  # claim of a run that is not READY and due
    STALE_ATTEMPT = "STALE_ATTEMPT"  # a worker write from an attempt that lost the run
    LOG_GAP = "LOG_GAP"  # log lines would leave a hole; ``errors.first_seq`` says where
    RUN_NOT_FINISHED = "RUN_NOT_FINISHED"  # delete while a run is unfinished
    PIPELINE_IN_USE = "PIPELINE_IN_USE"  # delete of a pipeline a workflow or schedule uses
    WORKFLOW_IN_USE = "WORKFLOW_IN_USE"  # delete of a workflow a schedule starts
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"  # key reused with another body
    IDEMPOTENCY_IN_PROGRESS = "IDEMPOTENCY_IN_PROGRESS"  # first request still running
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


_CODE_OF_STATUS = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def code_for_status(status: int) -> ErrorCode:
    """The generic code of an HTTP status (errors that carry no code of their own)."""
    return _CODE_OF_STATUS.get(status, ErrorCode.INTERNAL_ERROR)


class DomainError(Exception):
    """Base of errors a client can act on; ``status`` is the HTTP answer."""

    status = 400

    def __init__(
        self,
        message: str,
        errors: dict[str, Any] | None = None,
        code: ErrorCode | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.code = code or code_for_status(self.status)


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """The request is valid but the resource's current state forbids it."""

    status = 409


class ValidationFailed(DomainError):
    status = 422


class UnsupportedMediaType(DomainError):
    """The body is not in a form this endpoint reads."""

    status = 415


def _string_keys(value: Any) -> Any:
    """Make every key a string: marshmallow keys list items by int index beside field names,
    and sorting mixed keys while dumping JSON raises TypeError (a 500 instead of a 422)."""
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


def error_response(
    status: int,
    message: str,
    errors: dict[str, Any] | None = None,
    code: ErrorCode | None = None,
) -> Response:
    code = code or code_for_status(status)
    body = {"code": code.value, "message": message, "errors": _string_keys(errors or {})}
    response = jsonify(body)
    response.status_code = status
    return response


def _handle_domain_error(error: DomainError) -> Response:
    db.session.rollback()
    return error_response(error.status, error.message, error.errors, error.code)


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
    # Keep what the exception says beyond its body, e.g. the Allow header of a 405.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
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
    return error_response(500, "Internal server error", code=ErrorCode.INTERNAL_ERROR)


def register_error_handlers(app: Flask) -> None:
    """Answer every error with the JSON shape above and the right status."""
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
