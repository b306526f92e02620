"""Fixtures of the end-to-end suite: one real service stack per session (see stack.py).

On a failure, the last lines of every child process's log are attached to the report.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODELS
from tests.e2e.harness import E2E_MODELS, Client, tail
from tests.e2e.stack import Stack

IEEE13 = MODELS / "ieee13" / "test_IEEE_13_NR.glm"
R1 = MODELS / "taxonomy" / "test_R1-12.47-1_NR.glm"
HVAC = MODELS / "residential" / "test_HVAC_common_cool.glm"
WEATHER = MODELS / "weather" / "WA-Yakima.tmy2"
LONG = E2E_MODELS / "long_residential.glm"  # a year at 1 s steps: minutes unless stopped
MEDIUM = E2E_MODELS / "medium_residential.glm"  # a few seconds

_active: dict[str, Stack] = {}


E2E_ORDER = (
    "test_pipeline_runs.py",
    "test_callbacks.py",
    "test_workflows.py",
    "test_fault_injection.py",
    "test_sqlite_embedded.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark e2e tests; run the plain pipeline tests first and the fault tests after them."""

    def rank(item: pytest.Item) -> int:
        path = Path(str(item.fspath))
        if path.parent != Path(__file__).parent:
            return -1
        item.add_marker(pytest.mark.e2e)
        return E2E_ORDER.index(path.name) if path.name in E2E_ORDER else len(E2E_ORDER)

    items.sort(key=rank)  # stable: each file keeps its own order


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test with real processes")


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert IEEE13.exists(), f"GridLAB-D models not found at {MODELS}"
    stack = Stack(tmp_path_factory.mktemp("e2e"))
    _active["stack"] = stack
    try:
        stack.start()
        seconds = stack.timings["stack_start_seconds"]
        print(f"\ne2e stack up in {seconds:.1f} s; logs in {stack.log_dir}")
        yield stack
    finally:
        stack.stop()
        _active.pop("stack", None)


@pytest.fixture
def stack(e2e_stack: Stack) -> Stack:
    e2e_stack.ensure_up()
    return e2e_stack


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    """A client of a stack with at least one worker running."""
    client = stack.client()
    yield client
    # Leave no run of this test occupying a worker for the next one.
    stack.ensure_up()
    stack.settle(client, client.created)


@pytest.fixture
def api_client(e2e_stack: Stack) -> Iterator[Client]:
    """A client of the API that needs no worker (runs may stay READY)."""
    e2e_stack.ensure_infra()
    client = e2e_stack.client()
    yield client
    e2e_stack.ensure_infra()
    e2e_stack.settle(client, client.created, timeout=5)


@pytest.fixture(scope="session")
def hvac_files() -> list[tuple[str, Path]]:
    """The residential model in a sub-folder and its weather file at the job root."""
    return [("models/test_HVAC_common_cool.glm", HVAC), ("WA-Yakima.tmy2", WEATHER)]


def residential_files(model: Path) -> list[tuple[str, Path]]:
    return [(f"models/{model.name}", model), ("WA-Yakima.tmy2", WEATHER)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    stack = _active.get("stack")
    if report.failed and stack is not None:
        for service in stack.services():
            report.sections.append(
                (f"log of {service.name} ({service.log_path})", tail(service.log_path, 80))
            )


def elapsed(start: float) -> float:
    return time.monotonic() - start
