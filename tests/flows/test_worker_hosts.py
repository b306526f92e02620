"""The flow worker checks database hosts again as it resolves them, and pins the address
that passed: a store that turned internal after creation never gets a connection."""

from __future__ import annotations

import contextlib

import pytest

from app.config import Settings
from app.flows import connectors
from app.worker import flow_tasks


@pytest.fixture
def allow_loopback(monkeypatch):
    monkeypatch.setattr(
        flow_tasks, "settings", Settings.from_env({}, OUTBOUND_ALLOWED_HOSTS="127.0.0.1")
    )


def _spec(source_host: str, target_host: str) -> dict:
    def store(host: str, name: str) -> dict:
        return {"id": name, "engine": "postgresql", "host": host, "port": 5432, "database": "d"}

    return {"sources": [{"store": store(source_host, "src")}], "target": store(target_host, "dst")}


def test_allowed_hosts_are_pinned_to_the_checked_address(monkeypatch, pg_source):
    spec = _spec("localhost", "127.0.0.1")
    allowed = Settings.from_env({}, OUTBOUND_ALLOWED_HOSTS="127.0.0.1, ::1, localhost")
    monkeypatch.setattr(flow_tasks, "settings", allowed)
    assert flow_tasks.pin_hosts(spec) is None
    assert spec["sources"][0]["store"]["address"] in ("127.0.0.1", "::1")
    assert spec["target"]["address"] == "127.0.0.1"
    # The drivers connect to the pinned address.
    pinned = {**pg_source.store(), "host": "name-that-does-not-resolve", "address": "127.0.0.1"}
    with contextlib.closing(connectors.connect(pinned)):
        pass


@pytest.mark.parametrize(
    ("source", "target", "kind", "reason"),
    [
        ("10.0.0.1", "127.0.0.1", "SOURCE_ERROR", "private"),
        ("127.0.0.1", "169.254.169.254", "PUBLISH_ERROR", "link-local"),
    ],
)
def test_refused_hosts_end_the_run_before_connecting(allow_loopback, source, target, kind, reason):
    state, error = flow_tasks.pin_hosts(_spec(source, target))
    assert state == "FAILED" and error["type"] == kind and reason in error["message"]
