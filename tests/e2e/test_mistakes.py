"""A newcomer's mistakes through the whole service (gunicorn API, Celery worker, PostgreSQL,
S3): each ends with a message that names the cause and says what to do."""

from __future__ import annotations

import json
import sys

import pytest

from tests.e2e.conftest import HVAC, IEEE13, WEATHER
from tests.e2e.harness import describe


def log_text(client, pipeline_id: str, run_id: str) -> str:
    return "\n".join(line["line"] for line in client.all_logs(pipeline_id, run_id))


@pytest.mark.timeout(120)
def test_weather_file_in_the_wrong_folder_says_where_it_must_be(client, stack):
    pipeline = client.pipeline_with_files(
        "models/test_HVAC_common_cool.glm",
        [("models/test_HVAC_common_cool.glm", HVAC), ("models/WA-Yakima.tmy2", WEATHER)],
    )
    run = client.create_run(pipeline["id"])
    run = client.wait_for_state(pipeline["id"], run["id"], "FAILED", 90)
    error = run["error"]
    assert error["type"] == "MODEL_ERROR", describe(run)
    assert error["message"].startswith("weather file '../WA-Yakima.tmy2' access failed. "), error
    assert "upload the file as 'WA-Yakima.tmy2'" in error["message"], error
    details = error["details"]
    assert details["exit_code"] == details["gridlabd_code"] == 6, details
    assert "stopped with code" not in json.dumps(error)
    assert run["attempt"] == 1  # a model error is not retried
    # The log is the user's world: job paths, GridLAB-D's own files as <gridlabd>.
    logs = log_text(client, pipeline["id"], run["id"])
    assert "<gridlabd>/share/tzinfo.txt(170): timezone spec" in logs, logs
    assert sys.prefix not in logs and str(stack.root) not in logs, logs
    assert str(stack.root) not in json.dumps(run) and sys.prefix not in json.dumps(run)


@pytest.mark.timeout(120)
def test_parameter_the_model_never_reads_is_flagged(client):
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    body = {"parameters": {"STOP_TIME": "2000-01-02", "minimum_timestep": "1"}}
    run = client.create_run(pipeline["id"], body)
    run = client.wait_for_state(pipeline["id"], run["id"], "COMPLETED", 90)
    # minimum_timestep is a GridLAB-D global: it has an effect, so it is not flagged.
    assert run["unused_parameters"] == ["STOP_TIME"], describe(run)
    logs = log_text(client, pipeline["id"], run["id"])
    assert "WARNING  [PARAMETERS] : parameter STOP_TIME has no effect" in logs, logs
    assert "minimum_timestep has no effect" not in logs


@pytest.mark.timeout(120)
def test_value_gridlabd_cannot_set_fails_the_run_naming_the_parameter(client):
    pipeline = client.pipeline_with_files(IEEE13.name, [(IEEE13.name, IEEE13)])
    run = client.create_run(pipeline["id"], {"parameters": {"minimum_timestep": "often"}})
    run = client.wait_for_state(pipeline["id"], run["id"], "FAILED", 90)
    error = run["error"]
    assert error["type"] == "PARAMETER_ERROR", describe(run)
    assert error["message"].startswith("Parameter minimum_timestep: "), error
    assert "'often'" in error["message"], error
    assert error["details"]["parameter"] == "minimum_timestep"
    assert run["artifacts"] == []  # stopped before simulating
