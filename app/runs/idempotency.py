"""``Idempotency-Key`` support for POSTs that create or change runs.

The first response to a key is stored with a hash of the request body; a repeat with the
same key and body gets that response again instead of doing the work twice. The key's
record is inserted in the same transaction as the work, so two concurrent repeats
serialize on its unique index and the loser replays the winner's answer.

Records never wedge a key: one still without a response after IDEMPOTENCY_PENDING_SECONDS
belongs to a request that died (a crash between the work and storing its answer) and is
taken over by the next repeat; every record expires after IDEMPOTENCY_TTL_SECONDS (the
sweeper deletes them, and an expired one is never replayed).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Response, current_app, g, jsonify, make_response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, ErrorCode, ValidationFailed
from app.extensions import db
from app.runs.models import IdempotencyRecord
from app.timeutil import utcnow

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"


def _find(key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        select(IdempotencyRecord)
        .where(
            IdempotencyRecord.api_key_id == g.api_key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.endpoint == request.path,
        )
        .with_for_update()
    )


def _is_dead(record: IdempotencyRecord) -> bool:
    """Expired, or pending for so long that the request that made it must have died."""
    settings = current_app.config["SETTINGS"]
    age = utcnow() - record.created_at
    if age > timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS):
        return True
    return record.status is None and age > timedelta(seconds=settings.IDEMPOTENCY_PENDING_SECONDS)


def purge_expired(session: Session, ttl_seconds: int) -> int:
    """Delete records older than ``ttl_seconds`` (the sweeper calls this); return how many."""
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    session.commit()
    return result.rowcount or 0


def _replay(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise ValidationFailed(
            f"{HEADER} was already used with a different request body",
            {HEADER: ["Use a new key for a different request"]},
            ErrorCode.IDEMPOTENCY_MISMATCH,
        )
    if record.status is None:
        raise Conflict(
            f"A request with this {HEADER} is still being processed",
            {HEADER: ["Retry shortly"]},
            ErrorCode.IDEMPOTENCY_IN_PROGRESS,
        )
    response = jsonify(record.body)
    response.status_code = record.status
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: F) -> F:
    """Make a POST view replay its first successful response for a repeated key."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 200:
            raise ValidationFailed(f"Invalid {HEADER}", {HEADER: ["1 to 200 characters"]})
        request_hash = hashlib.sha256(request.get_data()).hexdigest()
        existing = _find(key)
        if existing is not None and _is_dead(existing):
            db.session.delete(existing)  # taken over: this request does the work now
            db.session.flush()
        elif existing is not None:
            return _replay(existing, request_hash)
        record = IdempotencyRecord(
            api_key_id=g.api_key_id, key=key, endpoint=request.path, request_hash=request_hash
        )
        db.session.add(record)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            existing = _find(key)
            assert existing is not None
            return _replay(existing, request_hash)
        response = make_response(view(*args, **kwargs))
        if 200 <= response.status_code < 300:
            record = db.session.merge(record)
            record.status = response.status_code
            record.body = response.get_json()
            record.location = response.headers.get("Location")
            db.session.commit()
        return response

    return wrapper  # type: ignore[return-value]


def replayed_location(
    session: Session, api_key_id: int, key: str, endpoint: str, request_hash: str
) -> str | None:
    """Where the first request sent with ``key`` led (a page form's once-only token), if it
    was done and has not expired; a Conflict if ``key`` came with other content then."""
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.endpoint == endpoint,
        )
    )
    if record is None or record.location is None or _is_dead(record):
        return None
    if record.request_hash != request_hash:
        raise Conflict(
            "This form was already sent with other values and started a run: open the "
            "start page again for a new form",
            {"form": [f"Already used: {record.location}"]},
            ErrorCode.IDEMPOTENCY_MISMATCH,
        )
    return record.location


def claim(
    session: Session, api_key_id: int, key: str, endpoint: str, request_hash: str
) -> IdempotencyRecord:
    """Record ``key`` before the work, flushed: a repeat sent meanwhile waits on the unique
    index (PostgreSQL) or the write lock (SQLite) and fails with IntegrityError once this
    commits, so the work is done once. Set ``location`` on the record when it is done."""
    ttl = timedelta(seconds=current_app.config["SETTINGS"].IDEMPOTENCY_TTL_SECONDS)
    session.execute(  # an expired record of the same key is replaced; a live one stays
        delete(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.endpoint == endpoint,
            IdempotencyRecord.created_at < utcnow() - ttl,
        )
    )
    record = IdempotencyRecord(
        api_key_id=api_key_id, key=key, endpoint=endpoint, request_hash=request_hash
    )
    session.add(record)
    session.flush()
    return record
