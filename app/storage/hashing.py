"""A reader that hashes and counts what passes through it."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import BinaryIO


@dataclasses.dataclass(frozen=True)
class StoredObject:
    size: int
    sha256: str


class HashingReader:
    """Wrap a stream; ``read`` passes bytes through while updating size and SHA-256."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._hash.update(chunk)
        self.size += len(chunk)
        return chunk

    def result(self) -> StoredObject:
        return StoredObject(size=self.size, sha256=self._hash.hexdigest())
