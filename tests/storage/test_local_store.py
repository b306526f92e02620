"""The local object store deletes what S3's prefix delete would: a folder or one object."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.storage.local import LocalStore


def test_delete_prefix_deletes_a_single_object(tmp_path: Path):
    """A replaced pipeline file's old object is deleted by its key, a file, not a folder."""
    store = LocalStore(str(tmp_path))
    store.put_stream("pipelines/p/files/old", io.BytesIO(b"old"))
    store.put_stream("pipelines/p/files/new", io.BytesIO(b"new"))
    store.delete_prefix("pipelines/p/files/old")
    assert not (tmp_path / "pipelines/p/files/old").exists()
    assert (tmp_path / "pipelines/p/files/new").read_bytes() == b"new"


def test_delete_prefix_deletes_a_folder_and_ignores_what_is_gone(tmp_path: Path):
    store = LocalStore(str(tmp_path))
    store.put_stream("runs/r1/a.csv", io.BytesIO(b"a"))
    store.put_stream("runs/r1/sub/b.csv", io.BytesIO(b"b"))
    store.put_stream("runs/r2/a.csv", io.BytesIO(b"a"))
    store.delete_prefix("runs/r1/")
    assert not (tmp_path / "runs/r1").exists() and (tmp_path / "runs/r2/a.csv").exists()
    store.delete_prefix("runs/r1/")  # already gone: nothing to do
    store.delete_prefix("runs/nothing-here")


def test_delete_prefix_stays_inside_the_store(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    store = LocalStore(str(tmp_path / "store"))
    with pytest.raises(ValueError):
        store.delete_prefix("../outside.txt")
    assert outside.read_text() == "keep"
