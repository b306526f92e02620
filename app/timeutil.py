"""Time helpers: every timestamp the service stores is timezone-aware UTC."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; treat them as the UTC they were written as."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
