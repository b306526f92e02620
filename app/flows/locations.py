"""Where a data store may point: hosts through the outbound guard, paths inside roots.

A store's host is reached by a worker with the credentials a client gave, so it obeys the
same rule as run inputs (app/outbound.py): public addresses, or hosts and networks the
deployment lists in ``OUTBOUND_ALLOWED_HOSTS``. The one exception to the allow list is the
service's own database (same host, port and database name): a flow must never read the
service's tables. Paths of file and database-file stores are confined to
``FLOWS_DATA_ROOT`` (no ``..``, no symbolic link out of it); ``s3://`` prefixes to the
buckets in ``INPUT_S3_BUCKETS``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from app.config import Settings
from app.outbound import OutboundPolicy, address_problem, policy_for, resolve


def host_problem(
    settings: Settings, host: str, port: int | None, database: str | None
) -> str | None:
    """Why a database server at ``host`` may not be used, or None."""
    if _is_service_database(settings, host, port, database):
        return "This is the service's own database; a flow cannot read or write it"
    return checked_address(settings, host, port)[0]


def checked_address(
    settings: Settings, host: str, port: int | None
) -> tuple[str | None, str | None]:
    """(why ``host`` is refused, or None; the address it resolved to and passed, if any).

    The worker connects to that very address, so a DNS answer that changes between the
    check and the connection gets nowhere (the same reason app/outbound.py checks on
    connect).
    """
    policy = policy_for(settings)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        if _allowed_by_name(policy, host):
            return None, None
        return f"{host} does not resolve", None
    for ip in addresses:
        if _allowed_by_name(policy, host) or any(ip in n for n in policy.allowed_networks):
            continue
        problem = address_problem(ip)
        if problem:
            return (
                f"Refused: {problem}; a deployment allows internal database hosts in "
                "OUTBOUND_ALLOWED_HOSTS"
            ), None
    return None, str(addresses[0]) if addresses else None


def _allowed_by_name(policy: OutboundPolicy, host: str) -> bool:
    return host.lower() in policy.allowed_hosts


def _is_service_database(
    settings: Settings, host: str, port: int | None, database: str | None
) -> bool:
    uri = urlparse(settings.SQLALCHEMY_DATABASE_URI)
    if not uri.hostname or not database:
        return False
    same_port = (port or uri.port or 5432) == (uri.port or 5432)
    same_host = host.lower() == uri.hostname.lower() or _same_addresses(host, uri.hostname)
    return same_host and same_port and database == uri.path.lstrip("/")


def _same_addresses(a: str, b: str) -> bool:
    try:
        return bool(set(resolve(a)) & set(resolve(b)))
    except (OSError, UnicodeError):
        return False


def data_root(settings: Settings) -> Path:
    return Path(settings.FLOWS_DATA_ROOT).resolve()


def path_problem(settings: Settings, path: str) -> str | None:
    """Why a local path may not be a store's, or None: it must lie inside the data root."""
    if "\x00" in path:
        return "A path cannot contain NUL"
    root = data_root(settings)
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    if ".." in candidate.parts:
        return "A path cannot contain '..'"
    resolved = Path(os.path.realpath(candidate))
    if resolved != root and root not in resolved.parents:
        return f"Must be inside the data folder {root} (FLOWS_DATA_ROOT)"
    return None


def resolve_path(settings: Settings, path: str) -> Path:
    """The absolute path of a checked store path (relative paths are under the root)."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else data_root(settings) / candidate


def s3_prefix_problem(settings: Settings, url: str) -> str | None:
    parsed = urlparse(url)
    bucket = parsed.netloc
    if not bucket:
        return "An s3 location names a bucket: s3://bucket/prefix/"
    if ".." in parsed.path.split("/"):
        return "A prefix cannot contain '..'"
    policy = policy_for(settings)
    if bucket == policy.own_bucket:
        return "The service's own bucket cannot be a data store"
    if bucket not in policy.input_buckets:
        return (
            f"Bucket {bucket!r} is not one that flows may read "
            "(the deployment lists them in INPUT_S3_BUCKETS)"
        )
    return None
