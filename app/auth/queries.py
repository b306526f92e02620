"""Reads of the auth domain."""

from __future__ import annotations

import dataclasses
import threading

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApplicationKey, Permission
from app.auth.services import hash_token


@dataclasses.dataclass(frozen=True)
class Grant:
    """What an authenticated key may do."""

    key_id: int
    permission: Permission


def find_active_key(session: Session, token: str) -> ApplicationKey | None:
    """Return the unrevoked key whose token this is, or None."""
    return session.scalar(
        select(ApplicationKey).where(
            ApplicationKey.key_hash == hash_token(token), ApplicationKey.revoked_at.is_(None)
        )
    )


class GrantCache:
    """Remembers valid keys for ``ttl`` seconds, sparing a query on every request.

    Only known keys are cached (an attacker's guesses cannot fill it); a revocation takes
    effect within ``ttl`` seconds. ``ttl=0`` turns caching off.
    """

    def __init__(self, ttl: float, maxsize: int = 10_000):
        self._cache: TTLCache[str, Grant] | None = TTLCache(maxsize, ttl) if ttl > 0 else None
        self._lock = threading.Lock()

    def find(self, session: Session, token: str) -> Grant | None:
        digest = hash_token(token)
        if self._cache is not None:
            with self._lock:
                grant = self._cache.get(digest)
            if grant is not None:
                return grant
        key = find_active_key(session, token)
        if key is None:
            return None
        grant = Grant(key.id, key.permission)
        if self._cache is not None:
            with self._lock:
                self._cache[digest] = grant
        return grant


def find_active_key_by_id(session: Session, key_id: int) -> ApplicationKey | None:
    """The unrevoked key of id ``key_id`` (a signed-in page session names its key by id)."""
    return session.scalar(
        select(ApplicationKey).where(
            ApplicationKey.id == key_id, ApplicationKey.revoked_at.is_(None)
        )
    )
