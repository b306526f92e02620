"""Finding the installed job kinds: the JOB_KINDS setting and package entry points.

``JOB_KINDS`` lists references (``package.module:Class``, comma-separated); every
installed distribution can also offer kinds under the ``gridlabd_jobs.kinds`` entry point
group. Both the API (to list kinds and validate parameters) and workers (to run them)
load the same way; a worker runs the subset WORKER_JOB_KINDS names, or all it loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
from importlib.metadata import entry_points

from app.jobkit.kind import JobKind

ENTRY_POINT_GROUP = "gridlabd_jobs.kinds"


class KindLoadError(Exception):
    """A reference does not name an importable job kind (the message says which)."""


@dataclasses.dataclass(frozen=True)
class LoadedKind:
    kind: type[JobKind]
    reference: str  # "module:attr", what the job process imports

    @property
    def name(self) -> str:
        return self.kind.name


def import_kind(reference: str) -> type[JobKind]:
    """The JobKind class that ``module:attr`` names (a class, or a ``job_kind`` function)."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise KindLoadError(f"{reference!r}: expected 'package.module:Name'")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise KindLoadError(f"{reference!r} cannot be imported: {exc}") from exc
    if not (isinstance(target, type) and issubclass(target, JobKind)):
        raise KindLoadError(f"{reference!r} is not a JobKind subclass or @job_kind function")
    try:
        target.check()
    except TypeError as exc:
        raise KindLoadError(str(exc)) from exc
    return target


def _references(setting: str, use_entry_points: bool) -> list[str]:
    found = [item.strip() for item in setting.split(",") if item.strip()]
    if use_entry_points:
        found += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return list(dict.fromkeys(found))


def load_kinds(setting: str, use_entry_points: bool = True) -> dict[str, LoadedKind]:
    """Every kind named by ``setting`` and the entry points, by name; two kinds of one
    name are an error (which one would run?)."""
    kinds: dict[str, LoadedKind] = {}
    for reference in _references(setting, use_entry_points):
        kind = import_kind(reference)
        other = kinds.get(kind.name)
        if other is not None and other.kind is not kind:
            raise KindLoadError(
                f"Two job kinds are named {kind.name!r}: {other.reference} and {reference}"
            )
        kinds[kind.name] = LoadedKind(kind, reference)
    return dict(sorted(kinds.items()))


def select_kinds(kinds: dict[str, LoadedKind], names: str) -> dict[str, LoadedKind]:
    """The kinds a worker runs: those ``names`` lists (comma-separated), or all."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:
        return kinds
    missing = [name for name in wanted if name not in kinds]
    if missing:
        raise KindLoadError(
            f"WORKER_JOB_KINDS names kinds that are not installed: {', '.join(missing)}; "
            f"installed: {', '.join(kinds) or 'none'}"
        )
    return {name: kinds[name] for name in wanted}


def queue_for(name: str, default_queue: str, routes: str) -> str:
    """The Celery queue runs of kind ``name`` go to: ``JOB_KIND_QUEUES`` (``kind=queue``,
    comma-separated) or ``<CELERY_TASK_QUEUE>.<kind>``."""
    for item in routes.split(","):
        kind, _, queue = item.partition("=")
        if kind.strip() == name and queue.strip():
            return queue.strip()
    return f"{default_queue}.{name}"
