"""Cursor pagination shared by every list endpoint.

A cursor is an opaque token for the last row of a page: ``(created_at, key)`` of that
row, the key a unique string (an id, a file name). Keyset pagination keeps each page one
index range scan however deep a client pages, and a row inserted meanwhile never shifts a
page. A cursor is checked before use: one the API did not make is 422, never a query that
compares a string with a number.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import ValidationFailed
from app.safe_text import text_problem

CURSOR_FORMAT = "cursor"


class PageArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(
        metadata={
            "format": CURSOR_FORMAT,
            "description": "The previous page's `next_cursor` (opaque); omit for the first page",
        }
    )


def encode_cursor(created_at: datetime, key: str) -> str:
    raw = json.dumps([created_at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(created_at, key)`` a cursor holds; 422 for anything this API did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, key = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(created_at, str) or not isinstance(key, str) or text_problem(key):
            raise TypeError("not (ISO time, key)")
        at = datetime.fromisoformat(created_at)
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC), key
    except (ValueError, TypeError, OverflowError):  # OverflowError: year 1 at UTC+1
        raise ValidationFailed(
            "Invalid cursor", {"cursor": ["Not a cursor returned by this API"]}
        ) from None


def paginate(
    session: Any,
    query: Select,
    created_at: InstrumentedAttribute,
    key: InstrumentedAttribute,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Any], str | None]:
    """Return one page, newest first, and the cursor of the next page (or None).

    ``key`` is a unique string column that orders rows created in the same instant.
    """
    if cursor:
        at, last_key = decode_cursor(cursor)
        query = query.where(or_(created_at < at, and_(created_at == at, key < last_key)))
    rows = session.scalars(query.order_by(created_at.desc(), key.desc()).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, created_at.key), getattr(last, key.key))
    return rows, next_cursor
