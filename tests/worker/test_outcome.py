"""How a simulation's end maps to the run's state and error type.

The console texts are GridLAB-D's real output (captured from the driver), read by the
supervisor's own ConsoleReader.
"""

from __future__ import annotations

import json

from app.worker import console
from app.worker.outcome import classify
from app.worker.supervisor import ConsoleReader, Outcome

LOADED = {"event": "loaded", "starttime": "2000-01-01 00:00:00", "stoptime": "2000-01-02 00:00:00"}
VENV = "/srv/venvs/jobs-Ab12/lib/python3.11/site-packages"
STARTED = console.marker(
    "started",
    folder="models",
    hide=[[f"{VENV}/gridlabd", "<gridlabd>"], [VENV, "<site-packages>"], ["/jobs/r-1/", ""]],
)
# The residential model with its weather file beside it in models/ instead of one folder up.
WEATHER_IN_THE_WRONG_FOLDER = f"""
{STARTED}
WARNING  [INIT] : {VENV}/gridlabd/share/tzinfo.txt(170): timezone spec 'PST0PDT' not found \
in 'tzinfo.txt', will include no DST information
{console.marker("loaded", starttime="2001-07-24 01:00:00 PST", stoptime="2001-07-25 01:00:21 PST")}
ERROR    [INIT] : weather file '../WA-Yakima.tmy2' access failed
ERROR    [INIT] : init_by_deferral(): object climate_auto_0 initialization failed
ERROR    [INIT] : model initialization failed
ERROR    [INIT] : run_preparation() returned FAILED
FATAL    [INIT] : shutdown after simulation stopped prematurely
{console.marker("ran", code=6)}
"""
# A player file that does not exist: GridLAB-D finds out at the first step.
MISSING_PLAYER_FILE = f"""
{console.marker("started", folder="", hide=[])}
{console.marker("loaded", starttime="2000-01-01 00:00:00 UTC", stoptime="2000-01-01 00:10:00 UTC")}
FATAL    [2000-01-01 00:00:00 UTC] : sync_player: Unable to open player file \
'../data/missing.csv' for object 'player_auto_1'
ERROR    [2000-01-01 00:00:00 UTC] : 2000-01-01 00:00:00 UTC: object player_auto_1 stopped \
its clock (exec)!
FATAL    [2000-01-01 00:00:00 UTC] : shutdown after simulation stopped prematurely
{console.marker("ran", code=6)}
"""
# #include of a file that was not uploaded, in a model whose clock warns about its zone.
MISSING_INCLUDE = f"""
{console.marker("started", folder="models", hide=[])}
WARNING  [INIT] : <gridlabd>/share/tzinfo.txt(170): timezone spec 'PST0PDT' not found in \
'tzinfo.txt', will include no DST information
nothere.glm(1): include file open failed: No such file or directory
inc.glm(1): #include failed
inc.glm(1): load failed at or near 'end of line...'
ERROR    [INIT] : unable to load 'inc.glm': No such file or directory
FATAL    [INIT] : failed to load model file: inc.glm
{console.marker("load_failed", code=6)}
"""
REFUSED_PARAMETER = f"""
{console.marker("started", folder="", hide=[])}
ERROR    [INIT] : global_setvar(): unable to set minimum_timestep to abc
{console.marker("parameter_refused", name="minimum_timestep", value="abc",
                message="global_setvar(): unable to set minimum_timestep to abc")}
"""  # fmt: skip


def read(text: str, returncode: int) -> Outcome:
    """The outcome the supervisor would see for this console output."""
    outcome = Outcome(returncode=returncode)
    reader = ConsoleReader(None, outcome)
    lines, _ = console.split_lines(text)
    for line in lines:
        reader._take(line)
    return outcome


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
        messages=[{"severity": "MESSAGE", "phase": "load", "file": "m.glm", "line": 4,
                   "message": "expected ';'"}],
    )  # fmt: skip
    state, error = classify(outcome, 60)
    assert state == "FAILED" and error["type"] == "MODEL_ERROR"
    assert error["message"] == "m.glm(4): expected ';'"
    assert error["details"]["file"] == "m.glm" and error["details"]["line"] == 4


def test_load_failure_names_the_file_as_the_job_folder_does():
    state, error = classify(read(MISSING_INCLUDE, 3), 60)
    assert (state, error["type"]) == ("FAILED", "MODEL_ERROR")
    assert (
        error["message"]
        == "models/nothere.glm(1): include file open failed: No such file or directory"
    )
    assert (error["details"]["file"], error["details"]["line"]) == ("models/nothere.glm", 1)


def test_initialisation_failure_is_a_model_error_with_gridlabds_first_error():
    outcome = read(WEATHER_IN_THE_WRONG_FOLDER, 6)
    state, error = classify(outcome, 60)
    assert (state, error["type"]) == ("FAILED", "MODEL_ERROR")
    assert error["message"].startswith("weather file '../WA-Yakima.tmy2' access failed. ")
    assert "upload the file as 'WA-Yakima.tmy2'" in error["message"]
    assert "(models/)" in error["message"]
    details = error["details"]
    assert details["hint"] in error["message"]
    # The details agree with the message: same code everywhere, the cause is listed.
    assert details["gridlabd_code"] == details["exit_code"] == 6
    assert details["gridlabd_code_name"] == "FAILED_TO_START"
    assert "stopped with code" not in json.dumps(error)
    severities = [(m["severity"], m["phase"]) for m in details["messages"]]
    assert severities[0] == ("WARNING", "load")  # the time zone warning stays a warning
    assert severities[1:] == [("ERROR", "run")] * 4 + [("FATAL", "run")]


def test_server_paths_never_reach_the_error():
    error = classify(read(WEATHER_IN_THE_WRONG_FOLDER, 6), 60)[1]
    text = json.dumps(error)
    assert VENV not in text and "/jobs/r-1" not in text
    assert "<gridlabd>/share/tzinfo.txt" in text


def test_failure_while_simulating_is_a_simulation_error_naming_the_cause():
    state, error = classify(read(MISSING_PLAYER_FILE, 6), 60)
    assert (state, error["type"]) == ("FAILED", "SIMULATION_ERROR")
    assert error["message"].startswith(
        "sync_player: Unable to open player file '../data/missing.csv'"
    )
    assert "'../data/missing.csv' is outside the job folder" in error["message"]


def test_refused_parameter_names_the_parameter():
    state, error = classify(read(REFUSED_PARAMETER, 2), 60)
    assert (state, error["type"]) == ("FAILED", "PARAMETER_ERROR")
    assert error["message"].startswith("Parameter minimum_timestep: ")
    assert "'abc'" in error["message"]
    assert error["details"]["parameter"] == "minimum_timestep"
    assert error["details"]["value"] == "abc"


def test_crash_after_load():
    state, error = classify(Outcome(returncode=255, markers=[LOADED]), 60)
    assert error["type"] == "CRASH" and error["details"]["exit_code"] == 255
    state, error = classify(Outcome(returncode=-9, markers=[LOADED]), 60)
    assert error["details"]["signal"] == "SIGKILL"


def test_simulator_error_code_without_a_message():
    outcome = Outcome(returncode=5, markers=[LOADED, {"event": "ran", "code": 5}])
    error = classify(outcome, 60)[1]
    assert error["type"] == "SIMULATION_ERROR"
    assert error["message"] == "GridLAB-D stopped with code 5 (TIME_STEP_ERROR)"
    assert error["details"]["gridlabd_code"] == error["details"]["exit_code"] == 5


def test_no_sandbox_is_an_infrastructure_error():
    outcome = Outcome(returncode=70, markers=[{"event": "sandbox_unavailable", "message": "x"}])
    assert classify(outcome, 60)[1]["type"] == "INFRASTRUCTURE_ERROR"
