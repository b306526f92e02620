"""Object storage for pipeline files and run artifacts: S3 or a local folder.

Both stores stream: an upload is read from the request in chunks and hashed on the way,
a download is served in chunks (local) or by a presigned URL (S3), so a 1 GB artifact is
never held in memory. This package has no Flask in it (the worker uses ``s3.s3_client``);
``extension`` binds a store to the API app.
"""

from __future__ import annotations

from typing import Protocol

from app.config import Settings
from app.storage.hashing import StoredObject
from app.storage.local import LocalStore
from app.storage.s3 import S3Store


class ObjectStore(Protocol):
    def put_stream(self, key: str, stream: object) -> StoredObject:
        """Store everything ``stream.read()`` yields under ``key``."""

    def open(self, key: str) -> object:
        """Return a readable binary file object for ``key``."""

    def presigned_url(self, key: str, filename: str) -> str | None:
        """Return a time-limited download URL, or None if the store cannot make one."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object whose key starts with ``prefix``."""


def build_store(settings: Settings) -> ObjectStore:
    return S3Store(settings) if settings.uses_s3 else LocalStore(settings.ARTIFACTS_DIR)


__all__ = ["ObjectStore", "StoredObject", "build_store"]
