"""Run the simulation process and report on it while it runs.

The process gets its own session (process group), so a stop reaches everything it
started. While it runs, this loop streams its console to the API in batches, hands
progress from the simulation clock to the lease keeper (which renews the attempt's lease
for the whole attempt, see lease.py), and stops the process when the run is cancelled
(the keeper heard CANCELLING) or overruns its timeout: SIGINT first (GridLAB-D stops at
the next step and flushes its outputs), SIGKILL to the whole group after the grace
period.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.worker import console
from app.worker.api_client import ApiError, StaleAttempt, WorkerApi
from app.worker.lease import LeaseKeeper

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
MAX_LINE = 8192
POLL = 0.05


@dataclasses.dataclass
class Outcome:
    """What happened to the simulation process."""

    returncode: int | None = None
    stopped_for: str | None = None  # "cancel" or "timeout"
    abandoned: bool = False  # the attempt lost the run: nothing more may be reported
    markers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # parsed lines
    tail: list[str] = dataclasses.field(default_factory=list)

    def event(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.markers if m.get("event") == name), None)


class ConsoleReader(threading.Thread):
    """Collects the process's output lines, markers, errors and simulation clock."""

    def __init__(self, stream: Any, outcome: Outcome):
        super().__init__(daemon=True)
        self.stream, self.outcome = stream, outcome
        self.lock = threading.Lock()
        self.pending: list[str] = []
        self.clock: datetime | None = None
        self.start_time: datetime | None = None
        self.stop_time: datetime | None = None
        # A Python job's own status line (a "status" marker), which wins over the clock.
        self.status: tuple[float | None, str | None] | None = None

    def run(self) -> None:
        rest = ""
        for chunk in iter(lambda: os.read(self.stream.fileno(), 65536), b""):
            lines, rest = console.split_lines(rest + chunk.decode("utf-8", "replace"))
            for line in lines:
                self._take(line)
        if rest.strip():
            self._take(rest)

    def _take(self, line: str) -> None:
        line = line[:MAX_LINE]
        found = console.parse_marker(line)
        with self.lock:
            if found is not None:
                self.outcome.markers.append(found)
                if found.get("event") == "status":
                    self.status = (found.get("percent"), found.get("text"))
                if found.get("event") == "loaded":
                    self.start_time = console.parse_clock(found.get("starttime", ""))
                    self.stop_time = console.parse_clock(found.get("stoptime", ""))
                return
            line = console.hide_paths(line, self.outcome.event("started"))
            clock = console.progress_clock(line)
            if clock is not None:
                self.clock = clock
            message = console.parse_message(line, self.outcome.event("loaded") is not None)
            if message is not None:
                self.outcome.messages.append(message)
            self.pending.append(line)
            self.outcome.tail = (self.outcome.tail + [line])[-20:]

    def take_pending(self) -> list[str]:
        with self.lock:
            lines, self.pending = self.pending, []
            return lines

    def progress(self) -> tuple[float | None, str | None]:
        with self.lock:
            if self.status is not None:
                return self.status
            if self.clock is None or self.start_time is None or self.stop_time is None:
                return None, None
            percent = console.percent_done(self.start_time, self.stop_time, self.clock)
            return percent, f"simulation clock {self.clock:%Y-%m-%d %H:%M:%S}"


class Supervisor:
    """Runs one simulation process for one attempt and reports while it runs."""

    def __init__(
        self,
        api: WorkerApi,
        lease: LeaseKeeper,
        settings: Settings,
        next_log_seq: int,
        timeout: float,
        on_tick: Callable[[Outcome], None] | None = None,
    ):
        self.api, self.lease, self.settings, self.timeout = api, lease, settings, timeout
        self.on_tick = on_tick  # called with each report: a job's own reports (flow steps)
        self.next_seq = next_log_seq
        self.outcome = Outcome()
        self._unsent: list[str] = []

    def run(self, command: list[str], env: dict[str, str]) -> Outcome:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        reader = ConsoleReader(process.stdout, self.outcome)
        reader.start()
        try:
            self._watch(process, reader)
        finally:
            if process.poll() is None:
                self._kill(process)
            process.wait()
            reader.join(timeout=10)
            process.stdout.close()
        self.outcome.returncode = process.returncode
        if not self.outcome.abandoned:
            self._send_logs(reader, final=True)
        return self.outcome

    def _watch(self, process: subprocess.Popen, reader: ConsoleReader) -> None:
        started = time.monotonic()
        self._next_flush = started
        self._last_progress: tuple[float | None, str | None] = (None, None)
        interrupt_at: float | None = None
        while process.poll() is None:
            now = time.monotonic()
            try:
                self._report(reader, now)
            except StaleAttempt as exc:
                log.warning("Run %s: attempt superseded (%s); abandoning", self.api.run_id, exc)
                self.outcome.abandoned = True
                return
            except ApiError as exc:  # the API is unreachable: keep running, retry later
                log.warning("Run %s: report failed: %s", self.api.run_id, exc)
            if self.lease.lost.is_set():
                self.outcome.abandoned = True
                return
            if self.outcome.stopped_for is None and self.lease.cancel_requested.is_set():
                self.outcome.stopped_for = "cancel"
            if self.outcome.stopped_for is None and now - started > self.timeout:
                self.outcome.stopped_for = "timeout"
            if self.outcome.stopped_for and interrupt_at is None:
                interrupt_at = now
                self._signal(process, signal.SIGINT)
            if interrupt_at and now - interrupt_at > self.settings.WORKER_CANCEL_GRACE_SECONDS:
                self._kill(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=POLL)  # returns the moment the simulation ends

    def _report(self, reader: ConsoleReader, now: float) -> None:
        """Send due log lines; hand moved progress to the lease keeper."""
        if now >= self._next_flush:
            self._send_logs(reader)
            self._next_flush = now + self.settings.WORKER_LOG_FLUSH_SECONDS
        if self.on_tick is not None:
            self.on_tick(self.outcome)
        progress = reader.progress()
        if progress != self._last_progress and progress != (None, None):
            self.lease.report_progress(*progress)
            self._last_progress = progress

    def _send_logs(self, reader: ConsoleReader, final: bool = False) -> None:
        self._unsent.extend(reader.take_pending())
        if not self._unsent:
            return
        try:
            self.next_seq = self.api.logs(self.next_seq, self._unsent)
            self._unsent = []
        except StaleAttempt:
            raise
        except ApiError:
            if final:
                raise
            # kept in _unsent and sent with the next batch: nothing is lost

    def _signal(self, process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def _kill(self, process: subprocess.Popen) -> None:
        self._signal(process, signal.SIGKILL)
