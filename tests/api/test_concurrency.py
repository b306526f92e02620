"""Deleting a pipeline while runs are being created never leaves a run without its
pipeline: the two sides lock the pipeline row (shared for creation, exclusive for delete)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from app.extensions import db

CREATORS = 6
ROUNDS = 8


def _race(app, client_headers):
    """Create a pipeline, then create runs and delete it at the same moment."""
    client = app.test_client()
    pipeline = client.post(
        "/api/v1.0/pipelines", json={"name": "p", "model": "model.glm"}, headers=client_headers
    ).get_json()
    client.post(
        f"/api/v1.0/pipelines/{pipeline['id']}/files?name=model.glm",
        data=b"clock {}\n",
        headers=client_headers,
    )
    # Requests made from this thread share the test's app context and its session; end
    # its transaction so that (on SQLite) it holds no write lock during the race.
    db.session.remove()
    barrier = threading.Barrier(CREATORS + 1)
    runs_url = f"/api/v1.0/pipelines/{pipeline['id']}/runs"

    def create():
        barrier.wait()
        return app.test_client().post(runs_url, json={}, headers=client_headers)

    def delete():
        barrier.wait()
        return app.test_client().delete(
            f"/api/v1.0/pipelines/{pipeline['id']}", headers=client_headers
        )

    with ThreadPoolExecutor(CREATORS + 1) as pool:
        creations = [pool.submit(create) for _ in range(CREATORS)]
        deletion = pool.submit(delete)
        return pipeline, [f.result() for f in creations], deletion.result()


def test_delete_and_create_run_serialize(app, client, client_headers):
    for _ in range(ROUNDS):
        pipeline, creations, deletion = _race(app, client_headers)
        assert {r.status_code for r in creations} <= {201, 404}, [r.get_json() for r in creations]
        created = [r.get_json()["id"] for r in creations if r.status_code == 201]
        if deletion.status_code == 204:
            # Every run that got its 201 committed before the delete looked: impossible,
            # the delete would have seen it. So none did, and nothing is left behind.
            assert created == []
        else:
            assert deletion.status_code == 409, deletion.get_json()
            assert deletion.get_json()["code"] == "RUN_NOT_FINISHED"
            assert created
        for run_id in created:
            response = client.get(f"/api/v1.0/pipelines/{pipeline['id']}/runs/{run_id}",
                                  headers=client_headers)  # fmt: skip
            assert response.status_code == 200, response.get_json()
        db.session.remove()
    orphans = db.session.execute(
        text(
            "SELECT count(*) FROM runs LEFT JOIN pipeline_runs ON pipeline_runs.id = runs.id "
            "WHERE pipeline_runs.id IS NULL"
        )
    ).scalar()
    assert orphans == 0
