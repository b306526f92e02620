"""The job kit on its own: kinds, the registry, the context, and the job process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from marshmallow import Schema, fields

from app.jobkit import JobContext, JobError, JobKind, job_kind
from app.jobkit.registry import KindLoadError, import_kind, load_kinds, queue_for, select_kinds
from app.worker import console
from app.worker.job_tasks import classify
from app.worker.supervisor import Outcome

PROJECT = Path(__file__).resolve().parents[2]
RECORDER_CSV = """\
# file... voltage.csv
# interval... 60
# timestamp,voltage_A,voltage_B,power
2000-01-01 00:00:00 EST,+2401.7+0.0j,+2300.1-1.2d,1.5 kW
2000-01-01 00:01:00 EST,+2401.7+0.0j,+2500.0-1.2d,2.5 kW
2000-01-01 00:02:00 EST,+2401.7+0.0j,+2532.0-1.2d,3.5 kW
"""


class P(Schema):
    size = fields.Integer(required=True)


def test_job_kind_decorator_makes_a_kind():
    @job_kind("hello_kind", parameters=P, title="Hello")
    def hello(context: JobContext) -> list[str]:
        """Says hello."""
        return ["x"]

    assert issubclass(hello, JobKind) and hello.name == "hello_kind"
    assert hello.Parameters is P and hello.description == "Says hello."
    assert hello().run(None) == ["x"]  # type: ignore[arg-type]


def test_kind_names_are_checked():
    with pytest.raises(TypeError, match="must match"):
        job_kind("Bad-Name")(lambda context: None)


def test_registry_loads_setting_and_entry_points():
    kinds = load_kinds("tests.jobkinds:Sleeper, tests.jobkinds:failer")
    assert {"test_sleeper", "test_failer", "csv_summary", "voltage_report"} <= set(kinds)
    assert kinds["csv_summary"].reference == "gridlabd_job_examples.csv_summary:CsvSummary"
    assert list(select_kinds(kinds, "test_failer")) == ["test_failer"]
    with pytest.raises(KindLoadError, match="not installed: nope"):
        select_kinds(kinds, "test_failer,nope")


def test_registry_refuses_what_is_not_a_kind():
    with pytest.raises(KindLoadError, match="cannot be imported"):
        import_kind("tests.no_such_module:Kind")
    with pytest.raises(KindLoadError, match="not a JobKind"):
        import_kind("tests.jobkinds:SleeperParams")
    with pytest.raises(KindLoadError, match="package.module:Name"):
        import_kind("tests.jobkinds")


def test_queue_routes():
    assert queue_for("csv_summary", "jobs", "") == "jobs.csv_summary"
    assert queue_for("csv_summary", "jobs", "x=q1, csv_summary = heavy") == "heavy"


def test_context_status_log_and_outputs(tmp_path):
    markers, lines = [], []
    context = JobContext(
        tmp_path, {}, ["a.csv"], emit_marker=markers.append, emit_line=lines.append
    )
    context.status("Fitting load model", percent=140)
    with context.step("Reading", percent=10):
        context.log("two\nlines")
    assert console.parse_marker(markers[0]) == {
        "event": "status", "text": "Fitting load model", "percent": 100.0,
    }  # fmt: skip
    assert lines == ["Reading...", "two", "lines", "Reading: done"]
    assert context.input("a.csv") == tmp_path / "a.csv"
    with pytest.raises(JobError, match="inputs are: a.csv"):
        context.input("b.csv")
    with pytest.raises(JobError, match="outside the job folder"):
        context.output("../escape.txt")
    context.output("out/plot.png")
    assert context.declared_outputs == ["out/plot.png"]
    assert not context.cancelled()


def _drive(tmp_path: Path, reference: str, parameters: dict, inputs: dict[str, str]) -> tuple:
    root = tmp_path / "job"
    (root / ".tmp").mkdir(parents=True)
    for name, text in inputs.items():
        (root / name).write_text(text)
    spec = root / ".tmp" / "spec.json"
    spec.write_text(json.dumps({"parameters": parameters, "inputs": list(inputs)}))
    done = subprocess.run(
        [sys.executable, "-m", "app.worker.job_driver", "--root", str(root), "--kind", reference,
         "--spec", str(spec)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(root / ".tmp")},
    )  # fmt: skip
    markers = [m for m in map(console.parse_marker, done.stdout.splitlines()) if m]
    return done, {m["event"]: m for m in markers}, root


def test_csv_summary_in_its_own_process(tmp_path):
    done, events, root = _drive(
        tmp_path, "gridlabd_job_examples.csv_summary:CsvSummary", {}, {"v.csv": RECORDER_CSV}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert events["finished"]["outputs"] == ["summary.json", "summary.csv", "summary.png"]
    summary = json.loads((root / "summary.json").read_text())
    assert summary["rows"] == 3
    assert summary["columns"]["voltage_B"] == {
        "min": 2300.1, "max": 2532.0, "mean": pytest.approx(2444.0333, rel=1e-6), "count": 3,
    }  # fmt: skip
    assert summary["columns"]["power"]["mean"] == 2.5
    assert (root / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_voltage_report_counts_samples_outside_range(tmp_path):
    done, events, root = _drive(
        tmp_path,
        "gridlabd_job_examples.voltage_report:voltage_report",
        {"nominal_voltage": 2401.7771},
        {"v.csv": RECORDER_CSV},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((root / "voltage_report.json").read_text())
    b = report["meters"]["voltage_B"]
    # 2300.1 V is 0.9577 pu (inside); 2532.0 V is 1.0542 pu (above): one minute outside.
    assert (b["below"], b["above"], b["seconds_outside"]) == (0, 1, 60.0)
    assert report["meters"]["voltage_A"]["outside"] == 0
    assert report["meters_with_violations"] == 2  # "power" in kW reads far below 0.95 pu


def test_job_error_is_the_message_and_an_exception_is_logged(tmp_path):
    done, events, _ = _drive(tmp_path / "a", "tests.jobkinds:failer", {"mode": "job_error"}, {})
    assert events["job_error"]["message"] == "The feeder has no meters named in the study"
    state, error = classify(Outcome(returncode=3, markers=list(events.values())), 60)
    assert (state, error["type"]) == ("FAILED", "JOB_ERROR")
    assert error["message"] == "The feeder has no meters named in the study"

    done, events, _ = _drive(tmp_path / "b", "tests.jobkinds:failer", {"mode": "exception"}, {})
    assert "Traceback" in done.stdout and "secret_internal_key" in done.stdout
    state, error = classify(Outcome(returncode=3, markers=list(events.values())), 60)
    assert (state, error["type"]) == ("FAILED", "JOB_EXCEPTION")
    assert "KeyError" in error["message"] and "secret_internal_key" not in error["message"]


def test_classify_stops_and_crashes():
    assert classify(Outcome(stopped_for="cancel"), 5)[0] == "CANCELLED"
    assert classify(Outcome(stopped_for="timeout"), 5)[1]["type"] == "TIMEOUT"
    assert classify(Outcome(returncode=-9), 5)[1]["type"] == "CRASH"
    assert classify(Outcome(returncode=0, markers=[{"event": "finished"}]), 5) == (
        "COMPLETED",
        None,
    )
