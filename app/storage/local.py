"""Objects as files under one folder: the embedded default."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from app.storage.hashing import HashingReader, StoredObject

CHUNK = 1024 * 1024


class LocalStore:
    def __init__(self, root: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"Key {key!r} leaves the store")
        return path

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        """Write to a temporary file and rename, so a failed upload leaves nothing behind."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        reader = HashingReader(stream)
        try:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(reader, out, CHUNK)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return reader.result()

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def presigned_url(self, key: str, filename: str) -> str | None:
        return None

    def delete_prefix(self, prefix: str) -> None:
        """Delete a folder (``runs/<id>/``) or one object (a replaced file's key): rmtree
        alone refuses a file and, errors ignored, would leave it behind."""
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
