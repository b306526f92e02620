"""End-of-run callbacks delivered for real: the API's sweeper publishes them, a Celery
worker POSTs them to a receiver on ALLOWED_TEST_HOST, signed with the stack's
CALLBACK_SIGNING_SECRET, and retries while the receiver fails."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import IEEE13
from tests.e2e.harness import E2E_MODELS, CallbackReceiver, describe, wait_until


def assert_delivered(post: dict[str, Any], run: dict[str, Any], secret: str) -> None:
    """The POST tells the run's end, as JSON, signed with HMAC-SHA256 of its raw body."""
    assert post["headers"]["content-type"] == "application/json", post["headers"]
    body = json.loads(post["body"])
    assert set(body) == {"run_id", "kind", "state", "error", "finished_at"}, body
    assert body["run_id"] == run["id"] and body["kind"] == "pipeline", body
    assert body["state"] == run["state"] and body["error"] == run["error"], (body, describe(run))
    finished = datetime.fromisoformat(body["finished_at"])
    assert finished == datetime.fromisoformat(run["finished_at"]), (body, run["finished_at"])
    digest = hmac.new(secret.encode(), post["body"], hashlib.sha256).hexdigest()
    signature = post["headers"].get("x-signature-256", "")
    assert hmac.compare_digest(signature, f"sha256={digest}"), (signature, post["body"])


@pytest.mark.timeout(90)
def test_callback_is_posted_signed_when_the_run_ends(client, stack):
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    with CallbackReceiver() as receiver:
        url = f"{receiver.url}/hooks/run-ended?source=e2e"
        run = client.create_run(pipeline["id"], {"callback_url": url})
        assert run["callback_url"] == url
        run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 60)
        posts = wait_until(receiver.posts, 30, "the callback POST", diagnostics=stack.diagnostics)
    assert posts[0]["path"] == "/hooks/run-ended?source=e2e", posts[0]
    assert posts[0]["status"] == 200
    assert_delivered(posts[0], run, stack.callback_secret)


@pytest.mark.timeout(90)
def test_callback_is_retried_until_the_receiver_accepts_it(client, stack):
    pipeline = client.pipeline_with_files("broken.glm", [("broken.glm", E2E_MODELS / "broken.glm")])
    with CallbackReceiver(statuses=[500, 500]) as receiver:
        run = client.create_run(pipeline["id"], {"callback_url": f"{receiver.url}/hook"})
        run = client.wait_for_state(pipeline["id"], run["id"], "FAILED", 60)
        posts = wait_until(
            lambda: [p for p in receiver.posts() if p["status"] == 200] and receiver.posts(),
            60,
            "the callback to be delivered after two answers of 500",
            diagnostics=lambda: f"received: {receiver.posts()}\n{stack.diagnostics()}",
        )
    assert [p["status"] for p in posts] == [500, 500, 200], posts
    assert run["error"]["type"] == "MODEL_ERROR", describe(run)
    for post in posts:  # every attempt is the same signed notice
        assert post["body"] == posts[0]["body"]
        assert_delivered(post, run, stack.callback_secret)
