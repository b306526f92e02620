"""Writes of the auth domain."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from app.auth.models import ApplicationKey, Permission
from app.errors import ValidationFailed


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_application_key(
    session: Session, name: str, permission: str
) -> tuple[ApplicationKey, str]:
    """Create a key and return it with its token; the token is never stored or shown again."""
    try:
        perm = Permission(permission)
    except ValueError:
        allowed = ", ".join(p.value for p in Permission)
        raise ValidationFailed(
            f"Unknown permission {permission!r}", {"permission": [f"Must be one of: {allowed}"]}
        ) from None
    if not name.strip():
        raise ValidationFailed("A key needs a name", {"name": ["Must not be empty"]})
    token = secrets.token_urlsafe(32)
    key = ApplicationKey(name=name.strip(), key_hash=hash_token(token), permission=perm)
    session.add(key)
    session.flush()
    return key, token
