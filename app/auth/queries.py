"""Reads of the auth domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApplicationKey
from app.auth.services import hash_token


def find_active_key(session: Session, token: str) -> ApplicationKey | None:
    """Return the unrevoked key whose token this is, or None."""
    return session.scalar(
        select(ApplicationKey).where(
            ApplicationKey.key_hash == hash_token(token), ApplicationKey.revoked_at.is_(None)
        )
    )
