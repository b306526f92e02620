"""The tick, in process on both databases: fire times start runs once, misfires follow
the schedule's policy, and edits and pauses take effect at the next tick."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.pipelines.models import PipelineRun
from app.schedules import firing
from app.schedules.firing import prune_fires, tick
from app.schedules.models import Schedule, ScheduleFire
from app.timeutil import utcnow
from tests.schedules.conftest import API


def _settings(app):
    return app.config["SETTINGS"]


def _due_since(schedule_id: str, moment: datetime) -> None:
    """As if no scheduler had run since ``moment``: the next fire time is that old."""
    db.session.execute(
        update(Schedule).where(Schedule.id == schedule_id).values(next_fire_at=moment)
    )
    db.session.commit()


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _runs(schedule_id: str) -> list[PipelineRun]:
    runs = db.session.scalars(select(PipelineRun)).all()
    return [r for r in runs if (r.started_by or {}).get("schedule_id") == schedule_id]


def test_a_due_fire_time_starts_one_run_with_the_schedule_body(
    app, client, client_headers, schedule
):
    now = _minute(utcnow()) + timedelta(seconds=5)
    _due_since(schedule["id"], _minute(now))
    started = tick(db.session, _settings(app), now=now)
    assert len(started) == 1
    run = db.session.get(PipelineRun, started[0])
    assert run.parameters == {"A": "1", "B": "2"}  # the pipeline's, overridden by the body
    assert run.started_by == {"schedule_id": schedule["id"], "fire_time": _minute(now).isoformat()}
    assert run.dispatched_at is not None  # published at once
    assert tick(db.session, _settings(app), now=now) == []  # handled: nothing more is due
    shown = client.get(f"{API}/{schedule['id']}", headers=client_headers).get_json()
    assert [(f["outcome"], f["run_id"], f["run_state"]) for f in shown["fires"]] == [
        ("STARTED", run.id, "READY")
    ]
    assert shown["fires"][0]["run_url"].endswith(f"/runs/{run.id}")
    got = client.get(shown["fires"][0]["run_url"], headers=client_headers).get_json()
    assert got["started_by"]["schedule_id"] == schedule["id"]
    assert datetime.fromisoformat(shown["next_fire_times"][0]) == _minute(now) + timedelta(
        minutes=1
    )


def test_a_fire_time_claimed_already_starts_nothing(app, schedule):
    now = _minute(utcnow()) + timedelta(seconds=5)
    _due_since(schedule["id"], _minute(now))
    tick(db.session, _settings(app), now=now)
    _due_since(schedule["id"], _minute(now))  # a stale scheduler that saw the old next time
    assert tick(db.session, _settings(app), now=now) == []
    assert len(_runs(schedule["id"])) == 1
    fires = db.session.scalars(select(ScheduleFire)).all()
    assert len(fires) == 1


def test_old_fire_records_are_pruned_and_recent_ones_kept(app, schedule, monkeypatch):
    monkeypatch.setattr(firing, "PRUNE_BATCH", 1)  # several batches
    now = _minute(utcnow()) + timedelta(seconds=5)
    _due_since(schedule["id"], _minute(now))
    tick(db.session, _settings(app), now=now)
    keep = timedelta(days=_settings(app).SCHEDULE_FIRES_KEEP_DAYS)
    fired = _minute(now)  # the fire time
    assert prune_fires(db.session, _settings(app), now=fired + keep) == 0  # not older yet
    assert len(db.session.scalars(select(ScheduleFire)).all()) == 1
    assert prune_fires(db.session, _settings(app), now=fired + keep + timedelta(seconds=1)) == 1
    assert db.session.scalars(select(ScheduleFire)).all() == []
    assert len(_runs(schedule["id"])) == 1  # the run stays; only its fire record goes


def test_fire_times_within_the_grace_each_run(app, schedule):
    now = _minute(utcnow()) + timedelta(seconds=5)
    _due_since(schedule["id"], _minute(now) - timedelta(minutes=1))  # 65 s late, grace 60
    _settings(app)  # SCHEDULE_MISFIRE_GRACE_SECONDS = 60 by default
    started = tick(db.session, _settings(app), now=now - timedelta(seconds=10))
    assert len(started) == 1  # 55 s late: on time, one run; the next is not due yet
    assert len(tick(db.session, _settings(app), now=now)) == 1


def test_missed_fire_times_run_once_by_default(app, client, client_headers, schedule):
    now = _minute(utcnow()) + timedelta(seconds=5)
    _due_since(schedule["id"], _minute(now) - timedelta(minutes=30))  # down for 30 minutes
    started = tick(db.session, _settings(app), now=now)
    # The 30 fire times older than the grace (M-30 min .. M-1 min) become one run, at the
    # last of them; the one 5 s ago (M) runs as usual.
    assert len(started) == 2
    fires = client.get(f"{API}/{schedule['id']}", headers=client_headers).get_json()["fires"]
    assert [(f["outcome"], f["fire_count"]) for f in fires] == [("STARTED", 1), ("STARTED", 30)]
    assert "30 missed fire times" in fires[1]["message"]
    assert datetime.fromisoformat(fires[1]["fire_time"]) == _minute(now) - timedelta(minutes=1)


def test_missed_fire_times_are_skipped_with_the_skip_policy(app, client, client_headers, schedule):
    url = f"{API}/{schedule['id']}"
    body = {k: schedule[k] for k in ("name", "cron", "timezone", "target")}
    assert (
        client.put(url, json={**body, "misfire": "skip"}, headers=client_headers).status_code == 200
    )
    now = _minute(utcnow()) + timedelta(seconds=5)
    _due_since(schedule["id"], _minute(now) - timedelta(minutes=30))
    started = tick(db.session, _settings(app), now=now)
    assert len(started) == 1  # only the fire time within the grace
    fires = client.get(url, headers=client_headers).get_json()["fires"]
    assert [(f["outcome"], f["fire_count"], f["run_id"]) for f in fires] == [
        ("STARTED", 1, started[0]),
        ("SKIPPED", 30, None),
    ]
    assert "30 fire time(s)" in fires[1]["message"]


def test_a_paused_schedule_does_not_fire_and_resumes_from_now(
    app, client, client_headers, schedule
):
    url = f"{API}/{schedule['id']}"
    body = {k: schedule[k] for k in ("name", "cron", "timezone", "target", "misfire")}
    client.put(url, json={**body, "enabled": False}, headers=client_headers)
    later = utcnow() + timedelta(minutes=10)
    assert tick(db.session, _settings(app), now=later) == []
    client.put(url, json={**body, "enabled": True}, headers=client_headers)
    # The ten minutes spent paused are not missed fire times: nothing is caught up.
    assert len(tick(db.session, _settings(app), now=utcnow() + timedelta(minutes=1))) == 1


def test_an_edit_changes_what_the_next_fire_starts(app, client, client_headers, schedule, pipeline):
    url = f"{API}/{schedule['id']}"
    target = {"type": "pipeline", "id": pipeline["id"], "run": {"parameters": {"B": "edited"}}}
    body = {k: schedule[k] for k in ("name", "cron", "timezone", "misfire")}
    client.put(url, json={**body, "target": target}, headers=client_headers)
    started = tick(db.session, _settings(app), now=utcnow() + timedelta(minutes=1))
    assert db.session.get(PipelineRun, started[0]).parameters["B"] == "edited"


def test_a_target_that_cannot_start_is_a_failed_fire(app, client, client_headers, pipeline):
    # No model uploaded: the run cannot be created; the fire says why and the schedule goes on.
    body = {"name": "x", "cron": "* * * * *", "target": {"type": "pipeline", "id": pipeline["id"]}}
    schedule = client.post(API, json=body, headers=client_headers).get_json()
    assert tick(db.session, _settings(app), now=utcnow() + timedelta(minutes=1)) == []
    shown = client.get(f"{API}/{schedule['id']}", headers=client_headers).get_json()
    assert shown["fires"][0]["outcome"] == "FAILED"
    assert "model" in shown["fires"][0]["message"]
    assert len(shown["next_fire_times"]) == 5


def test_a_workflow_schedule_starts_a_workflow_run(
    app, client, client_headers, pipeline, model_file
):
    workflow = client.post(
        "/api/v1.0/workflows",
        json={"name": "w", "nodes": [{"name": "a", "pipeline_id": pipeline["id"]}]},
        headers=client_headers,
    ).get_json()
    target = {"type": "workflow", "id": workflow["id"], "run": {"parameters": {"a": {"C": 3}}}}
    body = {"name": "w nightly", "cron": "@daily", "timezone": "Europe/Paris", "target": target}
    schedule = client.post(API, json=body, headers=client_headers).get_json()
    first = datetime.fromisoformat(schedule["next_fire_times"][0])
    started = tick(db.session, _settings(app), now=first + timedelta(seconds=1))
    assert len(started) == 1
    run = client.get(
        f"/api/v1.0/workflows/{workflow['id']}/runs/{started[0]}", headers=client_headers
    ).get_json()
    assert run["started_by"]["schedule_id"] == schedule["id"]
    node_run_id = run["nodes"][0]["run_ids"][0]
    node_run = db.session.get(PipelineRun, node_run_id)
    assert node_run.parameters["C"] == "3" and node_run.dispatched_at is not None
