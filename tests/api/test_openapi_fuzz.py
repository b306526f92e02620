"""The OpenAPI spec says exactly what the server does (docs/adr/0014).

schemathesis reads /apispec.json and fuzzes every operation of the app in-process, client and
worker ones, through all its phases (examples, coverage, fuzzing, and the stateful phase that
follows the spec's links: create a pipeline, start a run, claim it, report on it) with all its
checks: no 5xx, every status, header and body as documented, every schema-valid request
accepted and every schema-violating one refused. Seeded, so CI replays the same requests.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from schemathesis.engine import events
from schemathesis.transport.wsgi import WSGI_TRANSPORT

from app.extensions import db
from app.pagination import CURSOR_FORMAT, encode_cursor

SEED = 20251125
STATEFUL_ACCEPTANCE = (
    "POST /api/v1.0/pipelines/{pipeline_id}/runs",
    "POST /api/v1.0/workflows",
    "PUT /api/v1.0/workflows/{workflow_id}",
    "POST /api/v1.0/workflows/{workflow_id}/runs",
    "POST /api/v1.0/job-kinds/{kind}/runs",
    "POST /api/v1.0/data-stores",
    "PUT /api/v1.0/data-stores/{store_id}",
    "POST /api/v1.0/data-stores/{store_id}/test",
    "POST /api/v1.0/flow-inputs",
    "POST /api/v1.0/flows",
    "POST /api/v1.0/schedules",
    "PUT /api/v1.0/schedules/{schedule_id}",
)
MAX_EXAMPLES = 8

# A cursor is opaque: a schema-valid one is one the API could have made.
_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
schemathesis.openapi.format(
    CURSOR_FORMAT, st.builds(encode_cursor, st.datetimes(timezones=st.just(UTC)), _TEXT)
)


def _read_extensions(node: Any) -> None:
    """Give the fuzzer the rules OpenAPI 3.0 can only state as extensions: ``x-propertyNames``
    is JSON Schema's patternProperties (with no other keys allowed)."""
    if isinstance(node, dict):
        names = node.pop("x-propertyNames", None)
        if names is not None:
            node["patternProperties"] = {names["pattern"]: node.pop("additionalProperties")}
            node["additionalProperties"] = False
        for value in node.values():
            _read_extensions(value)
    elif isinstance(node, list):
        for value in node:
            _read_extensions(value)


def _examples_name_a_schedule(spec: dict[str, Any], pipeline_id: str, schedule_id: str) -> None:
    """A schedule names the pipeline it starts inside its body (``target.id``), where no
    fuzzer can guess an id, and nothing links to it: the examples name a pipeline and a
    schedule made before fuzzing, so each schedule operation is seen to succeed."""
    path = spec["paths"]["/api/v1.0/schedules/{schedule_id}"]
    path["parameters"][0]["example"] = schedule_id
    for operation in (spec["paths"]["/api/v1.0/schedules"]["post"], path["put"]):
        operation["requestBody"]["content"]["application/json"]["example"]["target"]["id"] = (
            pipeline_id
        )


def _repeats_input_names(case: Any) -> bool:
    """``x-uniqueItemsBy: name`` on run inputs: a rule JSON Schema cannot state."""
    inputs = case.body.get("inputs") if isinstance(case.body, dict) else None
    names = [item.get("name") for item in inputs or [] if isinstance(item, dict)]
    return len(names) != len(set(names))


def _is_positive(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def load_schema(
    app: Flask, client_key: str, worker_key: str, schedule: dict[str, Any] | None = None
) -> Any:
    config = schemathesis.Config.from_dict(
        {
            # Seeded, with no example database or cache kept between runs: CI replays the
            # same requests every time.
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "cache": {"enabled": False},
            "checks": {"enabled": True},
            # Error feedback learns rules from 4xx bodies, for specs that leave them out; ours
            # states them, and its marshmallow parser reads a dict's key/value errors as fields.
            "phases": {"fuzzing": {"error-feedback": {"enabled": False}}},
            "headers": {"Authorization": f"Bearer {client_key}"},
            "operations": [
                {
                    "include-path-regex": "^/api/v1.0/worker/",
                    "headers": {"Authorization": f"Bearer {worker_key}"},
                },
                {
                    # Whether these accept a schema-valid body also depends on what no schema
                    # can see, each answered 422 naming the field: the pipeline's uploaded
                    # files (its model must be one), the deployment's outbound allow-lists
                    # (URLs resolving to internal addresses, s3 buckets not listed), and the
                    # workflow's own graph (pipelines that exist, unique node names, edges to
                    # nodes it has), a job kind's own parameter schema (a free JSON object in the
                    # spec), a data store's engine rules (a server needs a host, a file store a
                    # path inside FLOWS_DATA_ROOT) and whether it answers, a flow input's SQL
                    # (parsed) and stores, a flow's flow input, and a schedule's (a cron
                    # expression cronsim reads, a zone tzdata has, one of cron and interval, a
                    # target that exists and a run body its create-run accepts). tests/ cover
                    # each 422 and that valid ones are accepted; every other check still
                    # applies here.
                    "include-name": list(STATEFUL_ACCEPTANCE),
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "3xx", 401, 403, 404, 409, 422, 429]
                        }
                    },
                },
            ],
        }
    )
    raw = app.test_client().get("/apispec.json").get_json()
    _read_extensions(raw)
    if schedule is not None:
        _examples_name_a_schedule(raw, schedule["target"]["id"], schedule["id"])
    schema = schemathesis.openapi.from_dict(raw, config=config)
    schema.app, schema.location = app, "/apispec.json"

    @schema.hook
    def filter_case(_context: Any, case: Any) -> bool:
        return not (_is_positive(case) and _repeats_input_names(case))

    @schema.hook
    def map_case(_context: Any, case: Any) -> Any:
        # A client sends a new Idempotency-Key per distinct request; the same key with
        # another body is 422 by design (tests/runs/test_lifecycle.py covers the replay).
        if _is_positive(case) and "Idempotency-Key" in (case.headers or {}):
            case.headers["Idempotency-Key"] = str(uuid.uuid4())
        return case

    return schema


def _without_socket_options(send: Callable[..., Any]) -> Callable[..., Any]:
    """schemathesis 4.32 passes network-only options (max_redirects...) to the WSGI client
    when a check (ignored_auth) re-sends a request without a session; drop them."""

    def wrapper(case: Any, *, session: Any = None, **kwargs: Any) -> Any:
        if session is None:
            for name in ("max_redirects", "verify", "cert", "proxies"):
                kwargs.pop(name, None)
        return send(case, session=session, **kwargs)

    return wrapper


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def run_schemathesis(schema: Any) -> tuple[list[str], dict[str, set[int]]]:
    """Run every phase; return the failures, described, and the statuses each operation got."""
    failures: list[str] = []
    statuses: dict[str, set[int]] = defaultdict(set)
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for case_id, interaction in recorder.interactions.items():
                if interaction.response is not None:
                    label = recorder.cases[case_id].value.operation.label
                    statuses[label].add(interaction.response.status_code)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failures.append(_describe(event, case_id, check))
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"{type(event).__name__}: {getattr(event, 'info', event)}")
    return failures, statuses


def _describe(event: Any, case_id: str, check: Any) -> str:
    failure = check.failure_info.failure
    interaction = event.recorder.interactions.get(case_id)
    answer = ""
    if interaction is not None and interaction.response is not None:
        answer = f"\n-> {interaction.response.status_code} {interaction.response.content[:500]!r}"
    return (
        f"[{event.phase.name}] {event.recorder.label}: {check.name}: {failure.title}\n"
        f"{failure.message}\n{check.failure_info.code_sample}{answer}"
    )


def _a_schedule(app: Flask, headers: dict[str, str]) -> dict[str, Any]:
    client = app.test_client()
    pipeline = client.post(
        "/api/v1.0/pipelines", json={"name": "p", "model": "m.glm"}, headers=headers
    ).get_json()
    target = {"type": "pipeline", "id": pipeline["id"]}
    body = {"name": "s", "cron": "@daily", "target": target}
    schedule = client.post("/api/v1.0/schedules", json=body, headers=headers).get_json()
    # The requests ran in the test's app context: end its session's transaction, which on
    # SQLite (BEGIN IMMEDIATE) would hold the write lock the fuzzed requests need.
    db.session.remove()
    return schedule


# On PostgreSQL, what production runs (and where NUL bytes and forged cursors once gave 500s):
# the spec is the same on SQLite, and one run of the fuzzer is a minute and a half of CI.
@pytest.mark.parametrize("database_uri", ["postgresql"], indirect=True)
def test_the_server_does_what_its_spec_says(
    app: Flask,
    client_headers: dict[str, str],
    worker_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(WSGI_TRANSPORT, "send", _without_socket_options(WSGI_TRANSPORT.send))
    client_key = client_headers["Authorization"].removeprefix("Bearer ")
    worker_key = worker_headers["Authorization"].removeprefix("Bearer ")

    schema = load_schema(app, client_key, worker_key, _a_schedule(app, client_headers))
    failures, statuses = run_schemathesis(schema)

    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
    # It got through: with valid keys and the links, every operation answered a success at
    # least once (the downloads need a stored artifact or file under a guessed name).
    never_succeeded = {
        label for label, seen in statuses.items() if not any(200 <= s < 400 for s in seen)
    }
    assert never_succeeded <= {
        "GET /api/v1.0/pipelines/{pipeline_id}/runs/{run_id}/artifacts/{name}",
        "GET /api/v1.0/worker/runs/{run_id}/files/{name}",
        "GET /api/v1.0/job-kinds/{kind}/runs/{run_id}/artifacts/{name}",
        "GET /api/v1.0/worker/runs/{run_id}/inputs/{name}",
    }, dict(statuses)
    assert set(statuses) == {operation.label for operation in _operations(schema)}
