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
# GridLAB-D's messages: ``ERROR    [INIT] : text``; the context is INIT or the simulation
# clock. The text, and the unprefixed lines of the GLM parser and of #print, may start
# with ``file.glm(12): ``.
_SEVERITY = re.compile(
    r"^(?P<severity>FATAL|ERROR|WARNING|INFO|DEBUG|VERBOSE|TESTING)\s+"
    r"\[(?P<context>[^\]]*)\]\s*:\s?(?P<text>.*)$"
)
_FILE_LINE = re.compile(r"^(?P<file>[^\s()][^()]*?)\((?P<line>\d+)\): (?P<message>.+)$")
ERROR_SEVERITIES = ("ERROR", "FATAL")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def split_lines(buffer: str) -> tuple[list[str], str]:
    """Split on newlines and carriage returns (progress lines end in \\r); return the
    complete lines and the unfinished rest. A NUL becomes U+FFFD: the API refuses it."""
    parts = re.split(r"\r\n|\r|\n", buffer.replace("\x00", "\ufffd"))
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


def parse_message(line: str, loaded: bool) -> dict[str, Any] | None:
    """``{severity, context?, file?, line?, message, phase}`` from one of GridLAB-D's message
    lines, else None. Unprefixed ``file(line): text`` lines (parse errors, #print output)
    get the severity MESSAGE; ``phase`` is "load" until the model has loaded, then "run"."""
    stripped = line.strip()
    prefixed = _SEVERITY.match(stripped)
    text = prefixed.group("text").strip() if prefixed else stripped
    located = _FILE_LINE.match(text)
    if prefixed is None and located is None:
        return None
    found: dict[str, Any] = {
        "severity": prefixed.group("severity") if prefixed else "MESSAGE",
        "message": text,
        "phase": "run" if loaded else "load",
    }
    if prefixed:
        found["context"] = prefixed.group("context").strip()
    if located:
        found.update(
            file=located.group("file"),
            line=int(located.group("line")),
            message=located.group("message").strip(),
        )
    return found


def hide_paths(line: str, started: dict[str, Any] | None) -> str:
    """Show the server's folders as the driver's ``started`` marker says (the job folder
    as relative paths, the installation as ``<gridlabd>``...): users see their own world."""
    for server_path, shown in (started or {}).get("hide", []):
        line = line.replace(server_path, shown)
    return line
