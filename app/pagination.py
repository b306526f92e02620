"""Cursor pagination shared by every list endpoint.

A cursor is an opaque token for the last row of a page: ``(created_at, id)`` of that
row. Keyset pagination keeps each page one index range scan however deep a client pages,
and a row inserted meanwhile never shifts a page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import ValidationFailed


class PageArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None)


def encode_cursor(created_at: datetime, row_id: Any) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created_at), row_id
    except (ValueError, TypeError):
        raise ValidationFailed(
            "Invalid cursor", {"cursor": ["Not a cursor returned by this API"]}
        ) from None


def paginate(
    session: Any,
    query: Select,
    created_at: InstrumentedAttribute,
    row_id: InstrumentedAttribute,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Any], str | None]:
    """Return one page, newest first, and the cursor of the next page (or None)."""
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(or_(created_at < at, and_(created_at == at, row_id < last_id)))
    rows = session.scalars(query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, created_at.key), getattr(last, row_id.key))
    return rows, next_cursor
