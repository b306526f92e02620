"""Reading GridLAB-D's console: lines, progress, errors and the driver's markers.

Pure functions, so the supervisor stays about processes and the parsing is tested on
real captured output.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

MARKER = "@@gldjob "
_PROGRESS = re.compile(r"Processing (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
# GridLAB-D reports model errors as ``file.glm(12): message``.
_FILE_LINE = re.compile(r"^(?P<file>[^\s()][^()]*?)\((?P<line>\d+)\): (?P<message>.+)$")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def split_lines(buffer: str) -> tuple[list[str], str]:
    """Split on newlines and carriage returns (progress lines end in \\r); return the
    complete lines and the unfinished rest."""
    parts = re.split(r"\r\n|\r|\n", buffer)
    rest = parts.pop()
    return [p for p in parts if p.strip()], rest


def parse_marker(line: str) -> dict[str, Any] | None:
    if not line.startswith(MARKER):
        return None
    try:
        return json.loads(line[len(MARKER) :])
    except json.JSONDecodeError:
        return None


def marker(event: str, **fields: Any) -> str:
    return MARKER + json.dumps({"event": event, **fields})


def parse_clock(text: str) -> datetime | None:
    """The first ``YYYY-MM-DD HH:MM:SS`` in ``text`` (the zone is the model's own, so the
    start, clock and stop times of one model compare without it)."""
    found = _TIMESTAMP.search(text)
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S") if found else None


def progress_clock(line: str) -> datetime | None:
    found = _PROGRESS.search(line)
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S") if found else None


def percent_done(start: datetime, stop: datetime, clock: datetime) -> float:
    span = (stop - start).total_seconds()
    if span <= 0:
        return 100.0
    return round(max(0.0, min(100.0, (clock - start).total_seconds() / span * 100)), 2)


def model_error(line: str) -> dict[str, Any] | None:
    """``{file, line, message}`` from a ``file(line): message`` line, else None."""
    found = _FILE_LINE.match(line.strip())
    if not found:
        return None
    return {
        "file": found.group("file"),
        "line": int(found.group("line")),
        "message": found.group("message").strip(),
    }
