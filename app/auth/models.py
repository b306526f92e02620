"""Tables of the auth domain."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import utcnow
from app.types import UTCDateTime


class Permission(str, enum.Enum):
    """What a key may do. Callers and workers get different keys (least privilege)."""

    PIPELINES_CLIENT = "PIPELINES_CLIENT"
    PIPELINES_WORKER = "PIPELINES_WORKER"


class ApplicationKey(db.Model):
    __tablename__ = "application_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the token: the token itself has 256 bits of entropy, so a slow hash adds
    # nothing, and a keyed lookup by hash keeps authentication to one indexed query.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    permission: Mapped[Permission] = mapped_column(
        Enum(Permission, native_enum=False, length=40, validate_strings=True)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
