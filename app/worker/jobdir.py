"""A run's job folder: the pipeline's files and the run's inputs, fetched by streaming.

Each attempt gets a fresh folder, so two runs (or two attempts) never share outputs.
Every name is checked by app.filenames before anything is written: nothing can land
outside the folder.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from app.config import Settings
from app.filenames import name_problem
from app.outbound import OutboundRefused, guarded_session, policy_for
from app.storage.s3 import s3_client
from app.worker.api_client import WorkerApi

CHUNK = 1024 * 1024
SCRATCH = ".tmp"  # TMPDIR of the simulation; never an artifact


class InputError(Exception):
    """An input cannot be fetched or is not allowed: the run's fault, not the worker's."""


Snapshot = dict[str, tuple[int, int]]


@dataclasses.dataclass
class JobDir:
    root: Path

    def path_for(self, name: str) -> Path:
        problem = name_problem(name)
        if problem:
            raise InputError(f"{name!r}: file name {problem}")
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise InputError(f"{name!r} leaves the job folder")
        return path

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        path = self.path_for(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)

    def snapshot(self) -> Snapshot:
        """Size and modification time of every file, to tell outputs from inputs later."""
        found: Snapshot = {}
        for path in self.files():
            stat = path.stat()
            found[path.relative_to(self.root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
        return found

    def files(self) -> list[Path]:
        scratch = self.root / SCRATCH
        return sorted(
            p for p in self.root.rglob("*")
            if p.is_file() and not p.is_symlink() and not p.is_relative_to(scratch)
        )  # fmt: skip

    def outputs(self, before: Snapshot) -> list[str]:
        """Names of files that are new or changed since ``before``."""
        after = self.snapshot()
        return [name for name, state in after.items() if before.get(name) != state]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def create(settings: Settings, run_id: str, attempt: int) -> JobDir:
    root = Path(settings.WORKER_JOBS_DIR) / f"{run_id}-{attempt}"
    shutil.rmtree(root, ignore_errors=True)
    (root / SCRATCH).mkdir(parents=True)
    return JobDir(root)


def fetch_files(job: JobDir, api: WorkerApi, files: list[dict[str, Any]]) -> None:
    """Download the pipeline's files from the API."""
    for item in files:
        job.write(item["name"], api.download(item["url"]))


def fetch_inputs(job: JobDir, settings: Settings, inputs: list[dict[str, str]]) -> None:
    """Download each input by its URL (http, https or s3) under its name.

    The URL was checked when the run was created; it is checked again here, where the
    request is made (app/outbound.py), because DNS answers and redirects can change.
    """
    for item in inputs:
        name, url = item["name"], item["url"]
        job.path_for(name)
        try:
            job.write(name, _stream(settings, url))
        except InputError as exc:  # say which input: a run may have many
            raise InputError(f"Input {name!r} could not be fetched: {exc}") from exc
        except OutboundRefused as exc:
            raise InputError(f"Input {name!r} was not fetched from {url}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - every fetch failure is the input's
            raise InputError(f"Input {name!r} could not be fetched from {url}: {exc}") from exc


def _stream(settings: Settings, url: str) -> Iterable[bytes]:
    policy = policy_for(settings)
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return _http_stream(guarded_session(policy), url)
    if scheme == "s3":
        problem = policy.s3_url_problem(url)
        if problem:
            raise OutboundRefused(problem)
        return _s3_stream(settings, url)
    raise InputError(f"Unsupported URL scheme {scheme!r} (http, https and s3 only)")


def _http_stream(session: requests.Session, url: str) -> Iterable[bytes]:
    # No credentials of ours go to a user-supplied URL: a bare request through the
    # guarded session (every connection, redirects included, is checked).
    response = session.get(url, stream=True, timeout=30)
    if response.status_code != 200:
        raise InputError(f"GET {url} answered HTTP {response.status_code}")
    return response.iter_content(CHUNK)


def _s3_stream(settings: Settings, url: str) -> Iterable[bytes]:
    parsed = urlparse(url)
    body = s3_client(settings).get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    return body["Body"].iter_chunks(CHUNK)


def scratch_env(job: JobDir) -> dict[str, str]:
    """The simulation's whole environment: nothing secret, temp files inside the job."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "GLPATH", "PYTHONPATH")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["TMPDIR"] = str(job.root / SCRATCH)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
