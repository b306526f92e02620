"""Downsampling a CSV for the plot, and the DAG layout: pure functions, no app."""

from __future__ import annotations

import math

import pytest

from app.errors import ValidationFailed
from app.page import dag_layout, plot

RECORDER = (
    "# file... medium.csv\n"
    "# timestamp,air_temperature,voltage\n"
    "2001-07-24 01:00:00 PDT,+63.3,+240.0+0.0j\n"
    "2001-07-24 02:00:00 PDT,+64.1,+3.0+4.0j\n"
    "2001-07-24 03:00:00 PDT,+65.2,+120.5-30.0d\n"
)


def test_recorder_csv_small_enough_is_kept_whole():
    result = plot._downsample(RECORDER, None, ["air_temperature", "voltage"], 1000)
    assert result["x"] == "timestamp" and result["x_kind"] == "time"
    assert result["columns"] == ["timestamp", "air_temperature", "voltage"]
    temperature, voltage = result["series"]
    assert temperature["y"] == [63.3, 64.1, 65.2]
    assert temperature["x"][1] - temperature["x"][0] == 3600 * 1000
    assert voltage["y"] == [240.0, 5.0, 120.5]  # complex and polar values as magnitudes
    assert not result["downsampled"]


def test_downsampling_keeps_each_buckets_extremes():
    rows = "\n".join(
        f"{i},{math.sin(i / 50) * 10 + (100 if i == 5003 else 0)}" for i in range(20000)
    )
    result = plot._downsample("t,v\n" + rows, None, [], 100)
    series = result["series"][0]
    assert result["downsampled"] and result["ys"] == ["v"]
    assert len(series["x"]) <= 200
    assert max(series["y"]) > 90 and 5003.0 in series["x"]  # the spike survives
    assert series["x"] == sorted(series["x"])
    assert min(series["y"]) == pytest.approx(-10, abs=0.01)


def test_unknown_column_is_named():
    with pytest.raises(ValidationFailed) as caught:
        plot._downsample(RECORDER, None, ["nope"], 1000)
    assert "y" in caught.value.errors


def test_cells_that_are_not_numbers_are_skipped():
    result = plot._downsample("a,b\n1,2\n2,x\n3,4\n", None, ["b"], 1000)
    assert result["series"][0]["x"] == [1.0, 3.0] and result["x_kind"] == "number"


def test_layered_layout():
    drawing = dag_layout.layout([("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])])
    boxes = drawing.boxes
    assert boxes["a"].x < boxes["b"].x == boxes["c"].x < boxes["d"].x
    assert boxes["b"].y != boxes["c"].y
    assert set(drawing.edges) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    assert drawing.width > 3 * dag_layout.NODE_WIDTH
