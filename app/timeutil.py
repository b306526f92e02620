"""Time helpers: every timestamp the service stores is timezone-aware UTC."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

