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
from tests.conftest import MODELS

ROOT = Path(__file__).resolve().parents[2]
LONG = ROOT / "tests" / "e2e" / "models" / "long_residential.glm"


def drive(job: Path, model: str, *extra: str, timeout: float = 60) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "app.worker.gridlabd_driver", "--root", str(job), "--model", model,
         *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    lines, rest = console.split_lines(result.stdout + result.stderr + "\n")
    return result.returncode, lines


def events(lines: list[str]) -> list[str]:
    return [m["event"] for m in map(console.parse_marker, lines) if m]


def test_ieee13_writes_its_voltage_csv(tmp_path):
    shutil.copy(MODELS / "ieee13" / "test_IEEE_13_NR.glm", tmp_path)
    code, lines = drive(tmp_path, "test_IEEE_13_NR.glm")
    assert code == 0 and events(lines) == ["loaded", "ran"]
    csv = (tmp_path / "IEEE_13_NR_voltage.csv").read_text()
    assert "node_name,voltA_mag" in csv and "n633" in csv


def test_residential_model_finds_its_weather_one_folder_up(tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(MODELS / "residential" / "test_HVAC_common_cool.glm", tmp_path / "models")
    shutil.copy(MODELS / "weather" / "WA-Yakima.tmy2", tmp_path)
    code, lines = drive(tmp_path, "models/test_HVAC_common_cool.glm")
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
    errors = [e for e in map(console.model_error, lines) if e]
    assert errors[0]["file"] == "bad.glm" and errors[0]["line"] == 2


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
