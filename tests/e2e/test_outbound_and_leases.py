"""Hostile URLs never reach internal hosts, and slow transfers stay within one attempt.

Against the real stack: the forbidden server listens on 127.0.0.1 (outside the stack's
OUTBOUND_ALLOWED_HOSTS) and records whether anything reached it; the allowed host
127.0.0.2 redirects to it. The lease test puts a slow network between a worker and the
API, so that the download of a pipeline file and the upload of the outputs each take
longer than the lease.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import IEEE13, MEDIUM, residential_files
from tests.e2e.harness import (
    ALLOWED_TEST_HOST,
    FAST_RECOVERY,
    describe,
    history,
    wait_until,
)
from tests.e2e.throttle import ThrottledProxy
from tests.http_recorder import Recorder

LEASE = float(FAST_RECOVERY["RUN_LEASE_SECONDS"])


@pytest.fixture
def forbidden():
    with Recorder("127.0.0.1") as server:
        yield server


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "127.1", "2130706433", "0.0.0.0", "169.254.169.254"]
)
def test_runs_naming_internal_hosts_are_refused_at_submit(api_client, forbidden, host):
    port = forbidden.url.rsplit(":", 1)[1]
    pipeline = api_client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    for body in (
        {"inputs": [{"name": "in.csv", "url": f"http://{host}:{port}/in.csv"}]},
        {"callback_url": f"http://{host}:{port}/hook"},
    ):
        response = api_client.create_run_response(pipeline["id"], body)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "VALIDATION_FAILED"
    assert forbidden.requests == []


def test_a_redirect_to_an_internal_host_is_refused_when_fetching(client, stack, forbidden):
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    with Recorder(ALLOWED_TEST_HOST, redirect_to=f"{forbidden.url}/secret") as allowed:
        run = client.create_run(
            pipeline["id"],
            {
                "inputs": [{"name": "extra.csv", "url": f"{allowed.url}/extra.csv"}],
                "callback_url": f"{allowed.url}/hook",
            },
        )
        ended = client.wait_terminal(pipeline["id"], run["id"], 60)
        assert ended["state"] == "FAILED", describe(ended)
        assert ended["error"]["type"] == "INPUT_ERROR"
        assert "extra.csv" in ended["error"]["message"]
        assert "Refused" in ended["error"]["message"]
        # The callback POST is redirected to the forbidden host too: refused, not retried.
        wait_until(
            lambda: any(
                "Callback to" in w.log_text() and "not sent" in w.log_text() for w in stack.workers
            ),
            30,
            "the worker to refuse the redirected callback",
        )
        assert ("GET", "/extra.csv", b"") in allowed.requests
        assert "/hook" in allowed.paths
    assert forbidden.requests == []


@pytest.mark.timeout(240)
def test_transfers_longer_than_the_lease_complete_on_the_first_attempt(client, stack):
    for worker in stack.running_workers():
        worker.stop()
    rate = 100_000  # bytes per second each way: the 1.25 MB weather file takes ~12 s
    with ThrottledProxy(stack.api_port, rate) as proxy:
        slow_worker = stack.add_worker(api_url=proxy.url)
        try:
            pipeline = client.pipeline_with_files(
                f"models/{MEDIUM.name}",
                residential_files(MEDIUM),
                parameters={"RECORD_INTERVAL": "30"},  # about 1.3 MB of recorder output
                max_retries=2,
            )
            run = client.create_run(pipeline["id"])
            ended = client.wait_terminal(pipeline["id"], run["id"], 200)
        finally:
            slow_worker.stop()
    assert ended["state"] == "COMPLETED", describe(ended)
    assert ended["attempt"] == 1 and history(ended) == ["READY", "RUNNING", "COMPLETED"]
    sizes = {a["name"]: a["size"] for a in ended["artifacts"]}
    assert sizes["models/medium.csv"] > 500_000, sizes
    # The test is only meaningful if each transfer really outlasted the lease.
    assert proxy.longest["down"] > 2 * LEASE, proxy.longest  # the weather file
    assert proxy.longest["up"] > 2 * LEASE, proxy.longest  # the outputs
