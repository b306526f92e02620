"""A schedule on the real stack: the gunicorn API's scheduler threads (two processes) start
real GridLAB-D runs that workers complete; a pause stops it and an edit changes the next
run, with nothing restarted."""

from __future__ import annotations

import time
from collections import Counter

from tests.e2e.conftest import IEEE13
from tests.e2e.harness import API, wait_until

INTERVAL = 3


def test_a_schedule_runs_simulations_and_follows_pause_and_edit(client, stack):
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    target = {"type": "pipeline", "id": pipeline["id"], "run": {"parameters": {"TAG": "first"}}}
    body = {"name": "e2e", "interval_seconds": INTERVAL, "target": target}
    created = client.post(f"{API}/schedules", json=body)
    assert created.status_code == 201, created.text
    url = f"{API}/schedules/{created.json()['id']}"

    def fires() -> list[dict]:
        response = client.get(url)
        assert response.status_code == 200, response.text
        found = response.json()["fires"]
        client.created.extend((pipeline["id"], f["run_id"]) for f in found if f["run_id"])
        return found

    try:
        done = wait_until(
            lambda: [f for f in fires() if f["run_state"] == "COMPLETED"],
            60,
            "a scheduled run to complete",
            interval=0.5,
            diagnostics=stack.diagnostics,
        )
        run = client.get_run(pipeline["id"], done[0]["run_id"])
        assert run["started_by"]["schedule_id"] == created.json()["id"]
        assert run["parameters"]["TAG"] == "first"
        assert "IEEE_13_NR_voltage.csv" in [a["name"] for a in run["artifacts"]]

        paused = client.request("PUT", url, json={**body, "enabled": False})
        assert paused.status_code == 200 and paused.json()["next_fire_times"] == []
        count = len(fires())  # the PUT waited for any tick holding the schedule: final
        time.sleep(2 * INTERVAL)  # an observation window: two intervals, many ticks
        assert len(fires()) == count

        target["run"]["parameters"]["TAG"] = "second"
        edited = client.request("PUT", url, json={**body, "target": target})
        assert edited.status_code == 200, edited.text
        resumed_at = time.monotonic()
        newest = wait_until(
            lambda: len(fires()) > count and fires()[0],
            3 * INTERVAL,
            "the resumed schedule to fire",
            interval=0.3,
            diagnostics=stack.diagnostics,
        )
        print(f"\nresumed schedule fired after {time.monotonic() - resumed_at:.1f} s")
        edited_run = client.get_run(pipeline["id"], newest["run_id"])
        assert edited_run["parameters"]["TAG"] == "second"

        # Two API processes tick: still one run per fire time.
        runs = client.get(f"{client.run_path(pipeline['id'])}?limit=500").json()["items"]
        per_fire = Counter(r["started_by"]["fire_time"] for r in runs if r["started_by"])
        assert per_fire and set(per_fire.values()) == {1}, per_fire
    finally:
        client.request("PUT", url, json={**body, "enabled": False})
        assert client.request("DELETE", url).status_code == 204
        fires_left = client.get(url)
        assert fires_left.status_code == 404
