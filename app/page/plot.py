"""A CSV artifact as a few thousand points: min and max of each bucket of rows.

A recorder of a year at one-minute steps has 525,600 rows; a browser draws 1,000 pixels
across. Rows are cut into ``buckets`` equal runs (by row, as LTTB does), and each bucket
keeps its lowest and highest point of every plotted column, in row order, so every peak
and trough survives the cut. Only the kept points' x values are parsed (a timestamp parse
costs more than the float of a y), and an artifact never changes, so a result is cached
by its storage key.
"""

from __future__ import annotations

import csv
import io
import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache

from app.errors import ValidationFailed

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")
_NUMBER = re.compile(
    r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([+-](?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)?([ijdr])?"
)
_cache: LRUCache[tuple[Any, ...], dict[str, Any]] = LRUCache(maxsize=64)
_lock = threading.Lock()


def header_and_rows(text: str) -> tuple[list[str], list[str]]:
    """Column names and data lines. A GridLAB-D recorder writes ``# `` comment lines, the
    last of them the header (``# timestamp,air_temperature``); a plain CSV's first line is."""
    lines = text.splitlines()
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    if start:
        header_line = lines[start - 1].lstrip("#").strip()
    elif lines:
        header_line, start = lines[0], 1
    else:
        header_line = ""
    header = [name.strip() for name in next(csv.reader([header_line]), [])]
    rows = lines[start:]
    while rows and not rows[-1].strip():
        rows.pop()
    return header, rows


def number(text: str) -> float | None:
    """A value as a number: plain floats, and GridLAB-D's complex values (``+1.2-3.4j``,
    polar ``+240.1-30.0d``) as their magnitude; None for anything else."""
    try:
        return float(text)
    except ValueError:
        pass
    match = _NUMBER.match(text)
    if not match or match.end() != len(text.rstrip()):
        return None
    first = float(match.group(1))
    if match.group(2) is None:
        return first if match.group(3) is None else None
    if match.group(3) in ("j", "i"):
        return math.hypot(first, float(match.group(2)))
    if match.group(3) in ("d", "r"):
        return abs(first)
    return None


def time_ms(text: str) -> float | None:
    """A recorder timestamp as milliseconds of the model's own clock (its zone ignored:
    the x axis shows the time the model's clock showed)."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    try:
        at = datetime.fromisoformat(match.group(0).replace(" ", "T"))
    except ValueError:
        return None
    return at.replace(tzinfo=UTC).timestamp() * 1000


def _x_kind(sample: str) -> str:
    if time_ms(sample) is not None:
        return "time"
    if number(sample) is not None:
        return "number"
    return "row"


def _x_value(kind: str, text: str, index: int) -> float | None:
    if kind == "time":
        return time_ms(text)
    if kind == "number":
        return number(text)
    return float(index)


def downsample(
    cache_key: Any, text: str, x: str | None, ys: list[str], buckets: int
) -> dict[str, Any]:
    """The plot of columns ``ys`` against ``x`` (default: the first column), cached."""
    key = (cache_key, x, tuple(ys), buckets)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    result = _downsample(text, x, ys, buckets)
    with _lock:
        _cache[key] = result
    return result


def _column(header: list[str], name: str, field: str) -> int:
    if name not in header:
        raise ValidationFailed(
            f"No column {name!r} in this CSV", {field: [f"Not one of: {', '.join(header)}"]}
        )
    return header.index(name)


def _downsample(text: str, x: str | None, ys: list[str], buckets: int) -> dict[str, Any]:
    header, rows = header_and_rows(text)
    if not header:
        raise ValidationFailed("Not a CSV with a header line", {"artifact": ["No header"]})
    x = x or header[0]
    xi = _column(header, x, "x")
    if not ys:
        ys = [name for name in header if name != x][:1]
    x_kind = _x_kind(_field(rows[:1], xi)[0]) if rows else "row"
    size = max(1, math.ceil(len(rows) / buckets))
    series = []
    for name in ys:
        values, gaps = _numbers(_field(rows, _column(header, name, "y")))
        kept = [
            index
            for start in range(0, len(rows), size)
            for index in _extremes(values, start, size, gaps)
        ]
        x_cells = _field([rows[i] for i in kept], xi)
        points = [
            (_x_value(x_kind, cell.strip(), i), values[i])
            for cell, i in zip(x_cells, kept, strict=True)
        ]
        points = [(xv, yv) for xv, yv in points if xv is not None]
        series.append({"name": name, "x": [p[0] for p in points], "y": [p[1] for p in points]})
    return {
        "columns": header,
        "x": x,
        "x_kind": x_kind,
        "ys": ys,
        "rows": len(rows),
        "downsampled": size > 1,
        "series": series,
    }


def _field(rows: list[str], column: int) -> list[str]:
    """Column ``column`` of every row (split in C; a quoted comma is read with csv)."""
    if any('"' in line for line in rows[:100]):
        return [row[column] if len(row) > column else "" for row in csv.reader(rows)]
    try:
        return [line.split(",", column + 1)[column] for line in rows]
    except IndexError:  # a short row
        return [(parts + [""] * column)[column] for parts in (r.split(",") for r in rows)]


def _numbers(cells: list[str]) -> tuple[list[float], bool]:
    """Every cell as a float, NaN where it is not a number, and whether any NaN is (the
    fast path: all plain floats, converted in C)."""
    try:
        values = list(map(float, cells))
    except ValueError:
        values = [math.nan if (v := number(cell)) is None else v for cell in cells]
    return values, any(map(math.isnan, values))


def _extremes(values: list[float], start: int, size: int, gaps: bool) -> list[int]:
    """Indexes of a bucket's lowest and highest value, in row order (NaNs skipped)."""
    bucket = values[start : start + size]
    if gaps:
        known = [(v, i) for i, v in enumerate(bucket) if v == v]
        if not known:
            return []
        low, high = min(known)[1], max(known)[1]
    else:
        low, high = bucket.index(min(bucket)), bucket.index(max(bucket))
    return sorted({start + low, start + high})


def read_text(stream: io.BufferedIOBase | Any, limit: int) -> str:
    """The artifact's bytes as text, refusing one larger than ``limit`` (422)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValidationFailed(
            "This artifact is too large to plot", {"artifact": [f"Over {limit} bytes"]}
        )
    return data.decode("utf-8", errors="replace")
