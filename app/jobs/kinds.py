"""The job kinds this API process offers, loaded once at start-up (app/jobkit/registry)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app

from app.config import Settings
from app.errors import NotFound
from app.jobkit.kind import JobKind
from app.jobkit.registry import LoadedKind, load_kinds, queue_for

EXTENSION = "job_kinds"


def init_app(app: Flask, settings: Settings) -> None:
    """Load JOB_KINDS and the entry points; a kind that cannot be loaded stops start-up."""
    app.extensions[EXTENSION] = load_kinds(settings.JOB_KINDS)


def installed() -> dict[str, LoadedKind]:
    return current_app.extensions[EXTENSION]


def get_kind(name: str) -> type[JobKind]:
    found = installed().get(name)
    if found is None:
        have = ", ".join(installed()) or "none"
        raise NotFound("Job kind not found", {"kind": [f"No job kind {name!r}; installed: {have}"]})
    return found.kind


def queue_of(name: str) -> str:
    settings: Settings = current_app.config["SETTINGS"]
    return queue_for(name, settings.CELERY_TASK_QUEUE, settings.JOB_KIND_QUEUES)


def parameters_json_schema(kind: type[JobKind]) -> dict[str, Any]:
    """The kind's marshmallow schema as JSON Schema (apispec's converter), for clients and
    forms; nested schemas are inlined under ``definitions``."""
    plugin = MarshmallowPlugin()
    spec = APISpec(kind.name, "1", "3.0.3", plugins=[plugin])
    schema = plugin.converter.schema2jsonschema(kind.Parameters)
    nested = spec.to_dict().get("components", {}).get("schemas", {})
    result: dict[str, Any] = {"type": "object", **schema}
    if nested:
        result["definitions"] = nested
    return result
