"""Fixtures of the schedules tests: a schedule made through the API."""

from __future__ import annotations

from typing import Any

import pytest

API = "/api/v1.0/schedules"


def schedule_body(target_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "every minute",
        "cron": "* * * * *",
        "target": {"type": "pipeline", "id": target_id, "run": {"parameters": {"B": 2}}},
    }
    body.update(fields)
    return body


@pytest.fixture
def schedule(client, client_headers, pipeline, model_file) -> dict[str, Any]:
    response = client.post(API, json=schedule_body(pipeline["id"]), headers=client_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
