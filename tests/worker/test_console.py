"""Parsing GridLAB-D console output (lines captured from real runs)."""

from __future__ import annotations

from datetime import datetime

from app.worker import console


def test_split_lines_handles_carriage_returns_and_keeps_the_rest():
    lines, rest = console.split_lines("a\nProcessing 2001-07-24 10:49:49 PST...\r   \rb\nunfin")
    assert lines == ["a", "Processing 2001-07-24 10:49:49 PST...", "b"]
    assert rest == "unfin"


def test_split_lines_replaces_nul_which_the_api_refuses():
    lines, rest = console.split_lines("a\x00b\nc\x00")
    assert lines == ["a\ufffdb"] and rest == "c\ufffd"


def test_progress_from_the_simulation_clock():
    clock = console.progress_clock("Processing 2001-07-24 13:00:00 PST...")
    start, stop = datetime(2001, 7, 24, 1), datetime(2001, 7, 25, 1)
    assert clock == datetime(2001, 7, 24, 13)
    assert console.percent_done(start, stop, clock) == 50.0
    assert console.percent_done(start, start, clock) == 100.0
    assert console.progress_clock("WARNING  [INIT] : something") is None


def test_message_lines_with_severity_context_file_and_line():
    parse = console.parse_message
    assert parse("models/bad.glm(12): expected ';' at end of property specification", False) == {
        "severity": "MESSAGE",
        "file": "models/bad.glm",
        "line": 12,
        "message": "expected ';' at end of property specification",
        "phase": "load",
    }
    assert parse("FATAL    [INIT] : failed to load model file: bad.glm", False) == {
        "severity": "FATAL",
        "context": "INIT",
        "message": "failed to load model file: bad.glm",
        "phase": "load",
    }
    # A warning that names a file is a warning, not a model error.
    warning = parse(
        "WARNING  [INIT] : <gridlabd>/share/tzinfo.txt(170): timezone spec 'PST0PDT' not "
        "found in 'tzinfo.txt', will include no DST information",
        False,
    )
    assert warning["severity"] == "WARNING" and warning["context"] == "INIT"
    assert (warning["file"], warning["line"]) == ("<gridlabd>/share/tzinfo.txt", 170)
    assert warning["message"].startswith("timezone spec 'PST0PDT' not found")
    error = parse(
        "ERROR    [2000-01-01 00:00:00 UTC] : 2000-01-01 00:00:00 UTC: object player_auto_1 "
        "stopped its clock (exec)!",
        True,
    )
    assert error["severity"] == "ERROR" and error["context"] == "2000-01-01 00:00:00 UTC"
    assert error["phase"] == "run" and "file" not in error
    assert parse("init_node(obj=0;n1): nominal_voltage is not set", True) is None
    assert parse("recorder file out/x.csv: No such file or directory", True) is None
    assert parse("Processing 2001-07-24 10:49:49 PST...", True) is None


def test_server_paths_are_shown_as_the_driver_says():
    started = {
        "event": "started",
        "hide": [["/venv/lib/site-packages/gridlabd", "<gridlabd>"], ["/jobs/r-1/", ""]],
    }
    line = "WARNING  [INIT] : /venv/lib/site-packages/gridlabd/share/tzinfo.txt(170): x"
    assert (
        console.hide_paths(line, started) == "WARNING  [INIT] : <gridlabd>/share/tzinfo.txt(170): x"
    )
    assert console.hide_paths("open /jobs/r-1/models/a.csv", started) == "open models/a.csv"
    assert console.hide_paths("open /jobs/r-1/a.csv", None) == "open /jobs/r-1/a.csv"


def test_markers_round_trip():
    line = console.marker("loaded", starttime="2000-01-01 00:00:00 EST")
    assert console.parse_marker(line) == {"event": "loaded", "starttime": "2000-01-01 00:00:00 EST"}
    assert console.parse_marker("@@gldjob {broken") is None
    assert console.parse_marker("plain line") is None
    assert console.parse_clock("2000-01-01 00:00:01 EST") == datetime(2000, 1, 1, 0, 0, 1)
