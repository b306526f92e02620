"""How a simulation's end maps to the run's state and error type."""

from __future__ import annotations

from app.worker.outcome import classify
from app.worker.supervisor import Outcome

LOADED = {"event": "loaded", "starttime": "2000-01-01 00:00:00", "stoptime": "2000-01-02 00:00:00"}


def test_completed():
    assert classify(Outcome(returncode=0, markers=[LOADED, {"event": "ran", "code": 0}]), 60) == (
        "COMPLETED",
        None,
    )


def test_cancel_and_timeout_are_told_apart():
    assert classify(Outcome(returncode=130, stopped_for="cancel"), 60)[0] == "CANCELLED"
    state, error = classify(Outcome(returncode=-9, stopped_for="timeout"), 60)
    assert state == "FAILED" and error["type"] == "TIMEOUT"


def test_load_failure_carries_file_and_line():
    outcome = Outcome(
        returncode=3,
        markers=[{"event": "load_failed", "code": 6}],
        model_errors=[{"file": "m.glm", "line": 4, "message": "expected ';'"}],
    )
    state, error = classify(outcome, 60)
    assert state == "FAILED" and error["type"] == "MODEL_ERROR"
    assert error["message"] == "m.glm(4): expected ';'"
    assert error["details"]["file"] == "m.glm" and error["details"]["line"] == 4


def test_crash_after_load():
    state, error = classify(Outcome(returncode=255, markers=[LOADED]), 60)
    assert error["type"] == "CRASH" and error["details"]["exit_code"] == 255
    state, error = classify(Outcome(returncode=-9, markers=[LOADED]), 60)
    assert error["details"]["signal"] == "SIGKILL"


def test_simulator_error_code():
    outcome = Outcome(returncode=0, markers=[LOADED, {"event": "ran", "code": 5}])
    assert classify(outcome, 60)[1]["type"] == "SIMULATION_ERROR"


def test_no_sandbox_is_an_infrastructure_error():
    outcome = Outcome(returncode=70, markers=[{"event": "sandbox_unavailable", "message": "x"}])
    assert classify(outcome, 60)[1]["type"] == "INFRASTRUCTURE_ERROR"
