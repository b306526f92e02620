"""Streamed request bodies with a size limit, answered 413 when exceeded."""

from __future__ import annotations

from typing import BinaryIO

from flask import request

from app.errors import DomainError, UnsupportedMediaType


class PayloadTooLarge(DomainError):
    status = 413


def limited_body(max_bytes: int) -> BinaryIO:
    """Return the request body as a stream that refuses to yield more than ``max_bytes``.

    A declared Content-Length over the limit is refused before reading anything; a chunked
    body is cut off (werkzeug raises 413) as soon as it passes the limit. A multipart form
    (``curl -F``) is refused: its bytes are not the file, and storing them would corrupt it.
    """
    if request.mimetype == "multipart/form-data":
        raise UnsupportedMediaType(
            "Send the file itself as the request body (curl --data-binary @FILE), not as a "
            "multipart form (curl -F)",
            {"Content-Type": ["multipart/form-data is not accepted; send the raw file"]},
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(
            f"Upload is larger than the limit of {max_bytes} bytes",
            {"body": [f"{request.content_length} bytes > {max_bytes}"]},
        )
    request.max_content_length = max_bytes
    return capped(request.stream, max_bytes)


def capped(stream: BinaryIO, max_bytes: int) -> BinaryIO:
    """``stream`` read through, refused (413) past ``max_bytes``: a body, or one file of a
    form (the page's uploads), held to the same limit."""
    return _CappedReader(stream, max_bytes)


class _CappedReader:
    """Pass reads through, raising 413 once more than ``limit`` bytes have come."""

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream, self._limit, self._seen = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._seen += len(chunk)
        if self._seen > self._limit:
            raise PayloadTooLarge(
                f"Upload is larger than the limit of {self._limit} bytes",
                {"body": [f"more than {self._limit} bytes"]},
            )
        return chunk
