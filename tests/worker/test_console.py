"""Parsing GridLAB-D console output (lines captured from real runs)."""

from __future__ import annotations

from datetime import datetime

from app.worker import console


def test_split_lines_handles_carriage_returns_and_keeps_the_rest():
    lines, rest = console.split_lines("a\nProcessing 2001-07-24 10:49:49 PST...\r   \rb\nunfin")
    assert lines == ["a", "Processing 2001-07-24 10:49:49 PST...", "b"]
    assert rest == "unfin"


def test_progress_from_the_simulation_clock():
    clock = console.progress_clock("Processing 2001-07-24 13:00:00 PST...")
    start, stop = datetime(2001, 7, 24, 1), datetime(2001, 7, 25, 1)
    assert clock == datetime(2001, 7, 24, 13)
    assert console.percent_done(start, stop, clock) == 50.0
    assert console.percent_done(start, start, clock) == 100.0
    assert console.progress_clock("WARNING  [INIT] : something") is None


def test_model_error_lines():
    error = console.model_error("models/bad.glm(12): expected ';' at end of property specification")
    assert error == {
        "file": "models/bad.glm",
        "line": 12,
        "message": "expected ';' at end of property specification",
    }
    assert console.model_error("FATAL    [INIT] : failed to load model file: bad.glm") is None


def test_markers_round_trip():
    line = console.marker("loaded", starttime="2000-01-01 00:00:00 EST")
    assert console.parse_marker(line) == {"event": "loaded", "starttime": "2000-01-01 00:00:00 EST"}
    assert console.parse_marker("@@gldjob {broken") is None
    assert console.parse_marker("plain line") is None
    assert console.parse_clock("2000-01-01 00:00:01 EST") == datetime(2000, 1, 1, 0, 0, 1)
