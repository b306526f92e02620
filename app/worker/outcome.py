"""Turn what happened to a simulation into the run's final state and error.

The message of an error is the cause as GridLAB-D gave it (its first error line, with file
and line when it has them), and the details never say something else.
"""

from __future__ import annotations

import posixpath
import re
import signal
from typing import Any

from app.runs.states import ErrorType
from app.worker.console import ERROR_SEVERITIES
from app.worker.supervisor import Outcome

Report = tuple[str, dict[str, Any] | None]
MAX_MESSAGES = 50
# What GridLAB-D's calls return (docs: gridlabd-notes.md).
GRIDLABD_CODES = {
    1: "FILE_NOT_FOUND",
    2: "INVALID_FORMAT",
    3: "OPERATION_FAILED",
    4: "OBJECT_NOT_FOUND",
    5: "TIME_STEP_ERROR",
    6: "FAILED_TO_START",
}
_QUOTED_PATH = re.compile(r"'([^'\s<>]*[./][^'\s<>]*)'")


def error(kind: ErrorType, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's error as the API takes it."""
    return {"type": kind.value, "message": message, "details": details or {}}


def stopped(outcome: Outcome, timeout_seconds: float) -> Report | None:
    """How a run ended that its worker stopped (cancel or timeout), whatever kind it is."""
    if outcome.stopped_for == "cancel":
        return "CANCELLED", error(ErrorType.CANCELLED, "Cancelled while running")
    if outcome.stopped_for == "timeout":
        return "FAILED", error(
            ErrorType.TIMEOUT,
            f"Stopped after its timeout of {timeout_seconds:g} s",
            {"timeout_seconds": timeout_seconds},
        )
    return None


def _exit_details(outcome: Outcome) -> dict[str, Any]:
    code = outcome.returncode
    details: dict[str, Any] = {"exit_code": code, "last_lines": outcome.tail[-10:]}
    if code is not None and code < 0:
        details["signal"] = signal.Signals(-code).name
    return details


def classify(outcome: Outcome, timeout_seconds: float) -> Report:
    """Return (state, error) for the API from the simulation's outcome."""
    if (report := stopped(outcome, timeout_seconds)) is not None:
        return report
    if outcome.event("sandbox_unavailable"):
        message = outcome.event("sandbox_unavailable")["message"]
        return "FAILED", error(ErrorType.INFRASTRUCTURE_ERROR, f"Worker cannot sandbox: {message}")
    refused = outcome.event("parameter_refused")
    if refused is not None:
        return "FAILED", _parameter_error(refused)
    if outcome.event("loaded") is None:
        return "FAILED", _load_error(outcome)
    ran = outcome.event("ran")
    if ran is not None and ran.get("code") != 0:
        return "FAILED", _run_error(outcome, ran.get("code"))
    if ran is None or outcome.returncode != 0:
        return "FAILED", error(
            ErrorType.CRASH,
            f"The simulation process ended abnormally ({_describe_exit(outcome.returncode)})",
            _exit_details(outcome),
        )
    return "COMPLETED", None


def _parameter_error(refused: dict[str, Any]) -> dict[str, Any]:
    name, value = refused.get("name"), refused.get("value")
    return error(
        ErrorType.PARAMETER_ERROR,
        f"Parameter {name}: GridLAB-D could not set its global {name} to {value!r}; give a "
        "value of that global's type, or another name if the parameter is for the model",
        {"parameter": name, "value": value, "gridlabd_message": refused.get("message")},
    )


def _load_error(outcome: Outcome) -> dict[str, Any]:
    """The model did not load: the first parse error (``file(line): text``), or else the
    first error line; the process may also have died while loading."""
    loading = [m for m in outcome.messages if m["phase"] == "load"]
    first = next((m for m in loading if "file" in m and _is_error(m)), None)
    first = first or next((m for m in loading if m["severity"] in ERROR_SEVERITIES), None)
    details = {**_exit_details(outcome), "messages": _listed(outcome)}
    if first is None:
        last = outcome.tail[-1] if outcome.tail else "no message"
        return error(ErrorType.MODEL_ERROR, f"The model failed to load: {last}", details)
    return error(ErrorType.MODEL_ERROR, *_cause(first, outcome, details))


def _run_error(outcome: Outcome, code: int | None) -> dict[str, Any]:
    """GridLAB-D could not initialise the model (context INIT: a model error) or stopped
    while simulating; the cause is its first error line after the load."""
    first = next(
        (m for m in outcome.messages if m["phase"] == "run" and m["severity"] in ERROR_SEVERITIES),
        None,
    )
    details = {
        "gridlabd_code": code,
        "gridlabd_code_name": GRIDLABD_CODES.get(code or 0, "UNKNOWN"),
        **_exit_details(outcome),
        "messages": _listed(outcome),
    }
    if first is None:
        name = details["gridlabd_code_name"]
        return error(
            ErrorType.SIMULATION_ERROR, f"GridLAB-D stopped with code {code} ({name})", details
        )
    kind = ErrorType.MODEL_ERROR if first.get("context") == "INIT" else ErrorType.SIMULATION_ERROR
    return error(kind, *_cause(first, outcome, details))


def _cause(
    first: dict[str, Any], outcome: Outcome, details: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The message naming ``first``'s file as the job folder names it, with a hint on
    where a file it could not open must be; the details carry the same file and line."""
    folder = (outcome.event("started") or {}).get("folder", "")
    text = first["message"]
    if "file" in first:
        name = _in_job(folder, first["file"])
        details.update(file=name, line=first["line"])
        text = f"{name}({first['line']}): {text}"
    hint = _missing_file_hint(first["message"], folder)
    if hint:
        details["hint"] = hint
        text = f"{text}. {hint}"
    return text, details


def _in_job(folder: str, name: str) -> str:
    """A path GridLAB-D printed (relative to the model's folder) as the job folder names it."""
    if name.startswith(("/", "<")) or not folder:
        return name
    return posixpath.normpath(posixpath.join(folder, name))


def _missing_file_hint(text: str, folder: str) -> str | None:
    """For "cannot open file 'x'" messages: the name the file must have in the job."""
    if not re.search(r"\bfile\b", text, re.I):
        return None
    found = _QUOTED_PATH.search(text)
    if found is None or found.group(1).startswith("/"):
        return None
    path = found.group(1)
    name = _in_job(folder, path)
    where = f"the model's folder ({folder}/)" if folder else "the job folder"
    if name == ".." or name.startswith("../"):
        return (
            f"'{path}' is outside the job folder (paths in the model are relative to {where}): "
            "change the path in the model"
        )
    return (
        f"Paths in the model are relative to {where}: upload the file as '{name}' "
        "(a pipeline file or a run input)"
    )


def _is_error(message: dict[str, Any]) -> bool:
    return message["severity"] in (*ERROR_SEVERITIES, "MESSAGE")


def _listed(outcome: Outcome) -> list[dict[str, Any]]:
    """The parsed messages (errors and warnings), first ones first, bounded."""
    return outcome.messages[:MAX_MESSAGES]


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
