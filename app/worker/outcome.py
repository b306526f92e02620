"""Turn what happened to a simulation into the run's final state and error."""

from __future__ import annotations

import signal
from typing import Any

from app.runs.states import ErrorType
from app.worker.supervisor import Outcome

Report = tuple[str, dict[str, Any] | None]


def _error(kind: ErrorType, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind.value, "message": message, "details": details or {}}


def _exit_details(outcome: Outcome) -> dict[str, Any]:
    code = outcome.returncode
    details: dict[str, Any] = {"exit_code": code, "last_lines": outcome.tail[-10:]}
    if code is not None and code < 0:
        details["signal"] = signal.Signals(-code).name
    return details


def classify(outcome: Outcome, timeout_seconds: float) -> Report:
    """Return (state, error) for the API from the simulation's outcome."""
    if outcome.stopped_for == "cancel":
        return "CANCELLED", _error(ErrorType.CANCELLED, "Cancelled while running")
    if outcome.stopped_for == "timeout":
        return "FAILED", _error(
            ErrorType.TIMEOUT,
            f"Stopped after its timeout of {timeout_seconds:g} s",
            {"timeout_seconds": timeout_seconds},
        )
    if outcome.event("sandbox_unavailable"):
        message = outcome.event("sandbox_unavailable")["message"]
        return "FAILED", _error(ErrorType.INFRASTRUCTURE_ERROR, f"Worker cannot sandbox: {message}")
    if outcome.event("loaded") is None:
        return "FAILED", _model_error(outcome)
    ran = outcome.event("ran")
    if ran is not None and ran.get("code") != 0:
        return "FAILED", _error(
            ErrorType.SIMULATION_ERROR,
            f"GridLAB-D stopped with code {ran.get('code')}",
            {**_exit_details(outcome), "messages": outcome.model_errors},
        )
    if ran is None or outcome.returncode != 0:
        return "FAILED", _error(
            ErrorType.CRASH,
            f"The simulation process ended abnormally ({_describe_exit(outcome.returncode)})",
            _exit_details(outcome),
        )
    return "COMPLETED", None


def _model_error(outcome: Outcome) -> dict[str, Any]:
    first = outcome.model_errors[0] if outcome.model_errors else None
    details = {**_exit_details(outcome), "messages": outcome.model_errors}
    if first is None:
        last = outcome.tail[-1] if outcome.tail else "no message"
        return _error(ErrorType.MODEL_ERROR, f"The model failed to load: {last}", details)
    details.update(file=first["file"], line=first["line"])
    message = f"{first['file']}({first['line']}): {first['message']}"
    return _error(ErrorType.MODEL_ERROR, message, details)


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
