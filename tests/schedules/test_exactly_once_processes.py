"""Three scheduler processes tick one PostgreSQL database at once: every fire time of every
schedule starts exactly one run, none is missed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from app.auth.services import create_application_key
from app.extensions import db
from app.pipelines.models import PipelineRun
from app.schedules.models import FireOutcome, ScheduleFire
from tests.conftest import create_postgres_database, drop_postgres_database, make_settings

REPO = Path(__file__).resolve().parents[2]
SCHEDULES = 8
PROCESSES = 3
FIRES_EACH = 5  # wait for at least this many fire times per schedule


def _scheduler(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "schedule", "--loop"],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def test_three_schedulers_start_each_fire_time_once(tmp_path):
    uri = create_postgres_database()
    processes: list[subprocess.Popen] = []
    overrides = {"SCHEDULE_MIN_INTERVAL_SECONDS": 1}
    app = create_app(make_settings(tmp_path / "instance", uri, **overrides))
    try:
        with app.app_context():
            upgrade()
            _, token = create_application_key(db.session, "t", "PIPELINES_CLIENT")
            db.session.commit()
            client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
            pipeline = client.post(
                "/api/v1.0/pipelines", json={"name": "p", "model": "m.glm"}, headers=headers
            ).get_json()
            client.post(f"/api/v1.0/pipelines/{pipeline['id']}/files?name=m.glm", data=b"x",
                        headers=headers)  # fmt: skip
            target = {"type": "pipeline", "id": pipeline["id"]}
            ids = [
                client.post(
                    "/api/v1.0/schedules",
                    json={"name": f"s{i}", "interval_seconds": 1, "target": target},
                    headers=headers,
                ).get_json()["id"]
                for i in range(SCHEDULES)
            ]
            env = {
                **os.environ,
                "SQLALCHEMY_DATABASE_URI": uri,
                "CELERY_BROKER_URL": "memory://",
                "INSTANCE_DIR": str(tmp_path / "instance"),
                "SCHEDULE_TICK_SECONDS": "0.05",
                "LOG_LEVEL": "WARNING",
            }
            processes = [_scheduler(env, tmp_path / f"scheduler{n}.log") for n in range(PROCESSES)]
            deadline = time.monotonic() + 60
            while True:  # until every schedule has had FIRES_EACH fire times
                db.session.remove()
                least = db.session.scalar(
                    select(func.count()).select_from(ScheduleFire)
                    .group_by(ScheduleFire.schedule_id)
                    .order_by(func.count()).limit(1)
                )  # fmt: skip
                if least is not None and least >= FIRES_EACH and len(_fired(ids)) == SCHEDULES:
                    break
                assert all(p.poll() is None for p in processes), _logs(tmp_path)
                assert time.monotonic() < deadline, "schedules did not fire\n" + _logs(tmp_path)
                time.sleep(0.2)
            assert all(p.poll() is None for p in processes), _logs(tmp_path)
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)
            db.session.remove()
            _check_exactly_once(ids)
            assert "Traceback" not in _logs(tmp_path), _logs(tmp_path)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_postgres_database(uri)


def _fired(ids: list[str]) -> set[str]:
    return set(db.session.scalars(select(ScheduleFire.schedule_id).distinct())) & set(ids)


def _check_exactly_once(ids: list[str]) -> None:
    runs = db.session.scalars(select(PipelineRun)).all()
    per_fire = Counter((run.started_by["schedule_id"], run.started_by["fire_time"]) for run in runs)
    assert per_fire and max(per_fire.values()) == 1, [k for k, n in per_fire.items() if n > 1]
    fires = db.session.scalars(select(ScheduleFire)).all()
    assert {f.outcome for f in fires} == {FireOutcome.STARTED}
    assert {(f.schedule_id, f.fire_time.isoformat()) for f in fires} == set(per_fire)
    assert len({f.run_id for f in fires}) == len(fires) == len(runs)
    for schedule_id in ids:  # one fire every second, none skipped between the first and last
        times = sorted(datetime.fromisoformat(t) for s, t in per_fire if s == schedule_id)
        assert len(times) >= FIRES_EACH
        gaps = {b - a for a, b in zip(times, times[1:], strict=False)}
        assert gaps == {timedelta(seconds=1)}, (schedule_id, times)


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}"
        for path in sorted(tmp_path.glob("scheduler*.log"))
    )
