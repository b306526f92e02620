"""What a running job sees: its folder, inputs, parameters, a status line, a log, the
cancel flag and the outputs it declares.

The context lives in the job's own process (app/worker/job_driver.py). Status changes go
to the worker as marker lines on stdout (app/worker/console.py), log lines as plain
lines, so a job needs no network and no credentials; the worker reports both to the API.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Emit = Callable[[str], None]


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class JobContext:
    """Handed to ``JobKind.run``. ``folder`` is the working directory of the job."""

    def __init__(
        self,
        folder: Path,
        parameters: dict[str, Any],
        inputs: list[str],
        *,
        emit_marker: Emit | None = None,
        emit_line: Emit = _print,
        cancel_flag: threading.Event | None = None,
    ):
        self.folder = Path(folder)
        #: Validated by the kind's schema: the values have their Python types.
        self.parameters = parameters
        self._inputs = list(inputs)
        self._emit_marker = emit_marker or (lambda line: None)
        self._emit_line = emit_line
        self._cancel = cancel_flag or threading.Event()
        self._outputs: list[str] = []
        self._lock = threading.Lock()

    # --- inputs ---

    @property
    def inputs(self) -> dict[str, Path]:
        """Input files by name (as given: URL inputs, upstream workflow artifacts)."""
        return {name: self.folder / name for name in self._inputs}

    def input(self, name: str) -> Path:
        """The path of input ``name``; a JobError listing the inputs if there is none."""
        if name not in self._inputs:
            have = ", ".join(sorted(self._inputs)) or "none"
            from app.jobkit.kind import JobError

            raise JobError(f"No input named {name!r}; the run's inputs are: {have}")
        return self.folder / name

    # --- reporting ---

    def status(self, text: str, percent: float | None = None) -> None:
        """Set the run's status line (and percent, 0-100), as the API shows it."""
        if percent is not None:
            percent = max(0.0, min(100.0, float(percent)))
        from app.worker.console import marker

        self._emit_marker(marker("status", text=str(text)[:2000], percent=percent))

    @contextlib.contextmanager
    def step(self, text: str, percent: float | None = None) -> Iterator[None]:
        """``with context.step("Fitting load model", percent=40): ...``: the status for a
        block of work, logged when it starts and when it ends."""
        self.status(text, percent)
        self.log(f"{text}...")
        yield
        self.log(f"{text}: done")

    def log(self, *parts: object) -> None:
        """Append a line to the run's log (``print`` works too)."""
        text = " ".join(str(part) for part in parts)
        for line in text.splitlines() or [""]:
            self._emit_line(line)

    def cancelled(self) -> bool:
        """True once the run is being cancelled or timed out: stop soon, outputs so far are
        kept (marked partial). A job that does not stop is killed after a grace period."""
        return self._cancel.is_set()

    # --- outputs ---

    def output(self, path: str | os.PathLike[str]) -> Path:
        """Declare a file (relative to the folder, or inside it) as an output artifact."""
        resolved = (self.folder / path).resolve()
        if not resolved.is_relative_to(self.folder.resolve()):
            from app.jobkit.kind import JobError

            raise JobError(f"Output {os.fspath(path)!r} is outside the job folder")
        with self._lock:
            self._outputs.append(resolved.relative_to(self.folder.resolve()).as_posix())
        return resolved

    @property
    def declared_outputs(self) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(self._outputs))
