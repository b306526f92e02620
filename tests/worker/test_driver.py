"""The sandboxed GridLAB-D driver on real models, as a real subprocess."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.worker import console
from app.worker.jobdir import JobDir, scratch_env
from app.worker.outcome import classify
from app.worker.supervisor import ConsoleReader, Outcome
from tests.conftest import MODELS

ROOT = Path(__file__).resolve().parents[2]
LONG = ROOT / "tests" / "e2e" / "models" / "long_residential.glm"


def drive(job: Path, model: str, *extra: str, timeout: float = 60) -> tuple[int, list[str]]:
    (job / ".tmp").mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "app.worker.gridlabd_driver", "--root", str(job), "--model", model,
         *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        env=scratch_env(JobDir(job)),  # the environment the worker gives it
    )  # fmt: skip
    lines, rest = console.split_lines(result.stdout + "\n")
    return result.returncode, lines


def read(code: int, lines: list[str]) -> tuple[Outcome, list[str]]:
    """What the supervisor makes of the driver's output: the outcome and the logged lines."""
    outcome = Outcome(returncode=code)
    reader = ConsoleReader(None, outcome)
    for line in lines:
        reader._take(line)
    return outcome, reader.take_pending()


def residential(job: Path, weather_folder: str) -> str:
    (job / "models").mkdir()
    shutil.copy(MODELS / "residential" / "test_HVAC_common_cool.glm", job / "models")
    (job / weather_folder).mkdir(exist_ok=True)
    shutil.copy(MODELS / "weather" / "WA-Yakima.tmy2", job / weather_folder)
    return "models/test_HVAC_common_cool.glm"


def events(lines: list[str]) -> list[str]:
    return [m["event"] for m in map(console.parse_marker, lines) if m]


def test_ieee13_writes_its_voltage_csv(tmp_path):
    shutil.copy(MODELS / "ieee13" / "test_IEEE_13_NR.glm", tmp_path)
    code, lines = drive(tmp_path, "test_IEEE_13_NR.glm")
    assert code == 0 and events(lines) == ["started", "loaded", "ran"]
    csv = (tmp_path / "IEEE_13_NR_voltage.csv").read_text()
    assert "node_name,voltA_mag" in csv and "n633" in csv


def test_residential_model_finds_its_weather_one_folder_up(tmp_path):
    code, lines = drive(tmp_path, residential(tmp_path, "."))
    assert code == 0, lines[-10:]
    outputs = sorted(p.name for p in (tmp_path / "models").glob("*.csv"))
    assert outputs == [
        "test_HVAC_common_cool.csv",
        "test_HVAC_common_cool_energy.csv",
        "test_HVAC_common_cool_hourly.csv",
    ]


def test_broken_model_reports_file_and_line(tmp_path):
    (tmp_path / "bad.glm").write_text('clock {\n  starttime "2000-01-01 00:00:00";\n}\n')
    code, lines = drive(tmp_path, "bad.glm")
    assert code != 0 and "load_failed" in events(lines)
    state, error = classify(read(code, lines)[0], 60)
    assert (state, error["type"]) == ("FAILED", "MODEL_ERROR")
    assert error["message"] == "bad.glm(2): expected time value"
    assert (error["details"]["file"], error["details"]["line"]) == ("bad.glm", 2)


def test_weather_file_in_the_wrong_folder_is_a_model_error_that_says_where(tmp_path):
    code, lines = drive(tmp_path, residential(tmp_path, "models"))
    state, error = classify(read(code, lines)[0], 60)
    assert (state, error["type"]) == ("FAILED", "MODEL_ERROR"), error
    assert error["message"].startswith("weather file '../WA-Yakima.tmy2' access failed. "), error
    assert "upload the file as 'WA-Yakima.tmy2'" in error["message"]
    # The process ends with the code GridLAB-D returned, so the details agree.
    assert code == error["details"]["exit_code"] == error["details"]["gridlabd_code"] == 6
    # Warnings (C stdout) and errors (stderr) arrive in the order GridLAB-D printed them.
    order = [(m["severity"], m["phase"]) for m in error["details"]["messages"]]
    assert order == [("WARNING", "load"), *[("ERROR", "run")] * 4, ("FATAL", "run")], order


def test_the_log_shows_job_paths_and_no_server_folder(tmp_path):
    code, lines = drive(tmp_path, residential(tmp_path, "."))
    outcome, logged = read(code, lines)
    assert code == 0 and classify(outcome, 60) == ("COMPLETED", None)
    text = "\n".join(logged)
    assert sys.prefix not in text and str(tmp_path) not in text and str(ROOT) not in text
    assert "<gridlabd>/share/tzinfo.txt(170): timezone spec" in text  # the residential warning
    assert not [m for m in outcome.messages if m["severity"] != "WARNING"], outcome.messages


def ieee13(job: Path) -> str:
    shutil.copy(MODELS / "ieee13" / "test_IEEE_13_NR.glm", job)
    return "test_IEEE_13_NR.glm"


def test_parameter_the_model_never_reads_is_reported(tmp_path):
    code, lines = drive(tmp_path, ieee13(tmp_path), "-D", "UNUSED=5", "-D", "minimum_timestep=1")
    outcome, logged = read(code, lines)
    assert classify(outcome, 60) == ("COMPLETED", None)
    # minimum_timestep is a GridLAB-D global: it does something, so it is not reported.
    assert outcome.event("unused_parameters") == {"event": "unused_parameters", "names": ["UNUSED"]}
    warnings = [line for line in logged if "[PARAMETERS]" in line]
    assert len(warnings) == 1 and "parameter UNUSED has no effect" in warnings[0], logged


def test_parameters_read_by_the_model_or_its_includes_are_not_reported(tmp_path):
    (tmp_path / "models" / "parts").mkdir(parents=True)
    (tmp_path / "models" / "main.glm").write_text(
        "#ifndef INTERVAL\n#define INTERVAL=60\n#endif\n"
        "clock {\n starttime '2000-01-01 00:00:00';\n stoptime '2000-01-01 00:10:00';\n}\n"
        'module tape;\nmodule powerflow;\n#include "parts/node.glm"\n'
        "object recorder { parent n1; property voltage_A; interval ${INTERVAL}; file out.csv; }\n"
    )
    (tmp_path / "models" / "parts" / "node.glm").write_text(
        "object node { name n1; phases ABCN; nominal_voltage ${VOLTS}; }\n"
    )
    code, lines = drive(tmp_path, "models/main.glm", "-D", "INTERVAL=300", "-D", "VOLTS=120")
    outcome, logged = read(code, lines)
    assert classify(outcome, 60) == ("COMPLETED", None), logged
    assert outcome.event("unused_parameters") is None, logged
    rows = (tmp_path / "models" / "out.csv").read_text().splitlines()
    samples = [row.split(",") for row in rows if not row.startswith("#")]
    # Every 300 s (not the default 60) at the 120 V the included file was given.
    assert [time[11:19] for time, _ in samples] == ["00:00:00", "00:05:00"], samples
    assert all(value.startswith("+120") for _, value in samples), samples


def test_value_gridlabd_cannot_set_fails_before_simulating(tmp_path):
    code, lines = drive(tmp_path, ieee13(tmp_path), "-D", "minimum_timestep=abc")
    outcome, _ = read(code, lines)
    assert outcome.event("loaded") is None and outcome.event("ran") is None
    state, error = classify(outcome, 60)
    assert (state, error["type"]) == ("FAILED", "PARAMETER_ERROR")
    assert error["details"]["parameter"] == "minimum_timestep" and "'abc'" in error["message"]
    assert not (tmp_path / "IEEE_13_NR_voltage.csv").exists()


def test_system_directive_cannot_run_a_command(tmp_path):
    target = tmp_path.parent / f"{tmp_path.name}-pwned"
    (tmp_path / "evil.glm").write_text(
        f"#system touch {target}\nclock {{\n starttime '2000-01-01 00:00:00';\n"
        " stoptime '2000-01-01 00:00:10';\n}\n"
    )
    _, lines = drive(tmp_path, "evil.glm")
    assert not target.exists()
    assert any("evil.glm(1): #system is disabled" in line for line in lines)


def test_recorder_cannot_write_outside_the_job(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-escape.csv"
    (tmp_path / "escape.glm").write_text(
        "clock {\n starttime '2000-01-01 00:00:00';\n stoptime '2000-01-01 01:00:00';\n}\n"
        "module tape;\nmodule powerflow;\n"
        "object node { name n1; phases ABCN; nominal_voltage 120; }\n"
        f"object recorder {{ parent n1; property voltage_A; interval 60; file {outside}; }}\n"
    )
    code, lines = drive(tmp_path, "escape.glm")
    assert code != 0 and not outside.exists()
    assert any("Permission denied" in line for line in lines)


def test_sigint_stops_a_long_simulation_and_flushes(tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(LONG, tmp_path / "models")
    shutil.copy(MODELS / "weather" / "WA-Yakima.tmy2", tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.worker.gridlabd_driver", "--root", str(tmp_path),
         "--model", f"models/{LONG.name}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not list((tmp_path / "models").glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    stopped_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("SIGINT did not stop the simulation within 10 s")
    assert time.monotonic() - stopped_at < 10
    assert list((tmp_path / "models").glob("*.csv"))
