"""The attempt's lease, renewed from claim to final report by a thread of its own.

The lease must hold whatever the task is doing: downloading inputs, running the
simulation, or uploading a large artifact. A renewal that only happened inside the
simulation loop let a long transfer outlive the lease, and the sweeper then retried a
healthy attempt (WORKER_LOST) and orphaned its upload. The keeper also carries progress
(a progress report renews the lease too) and tells the task when the run is being
cancelled or no longer belongs to this attempt.
"""

from __future__ import annotations

import logging
import threading

from app.worker.api_client import ApiError, StaleAttempt, WorkerApi

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Heartbeats (or progress reports) every ``period`` seconds until stopped."""

    def __init__(self, api: WorkerApi, period: float):
        self.api = api.clone()  # its own connections: the task's are busy with transfers
        self.period = period
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()  # the run was taken from this attempt
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress: tuple[float | None, str | None] | None = None
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report_progress(self, percent: float | None, message: str | None) -> None:
        """Send this progress with the next renewal (a newer report replaces it)."""
        with self._lock:
            self._progress = (percent, message)

    def _loop(self) -> None:
        while not self._stop.wait(self.period) and not self.lost.is_set():
            self.renew()

    def renew(self) -> None:
        with self._lock:
            progress, self._progress = self._progress, None
        try:
            status = self.api.progress(*progress) if progress else self.api.heartbeat()
        except StaleAttempt as exc:
            log.warning("Run %s: attempt superseded (%s)", self.api.run_id, exc)
            self.lost.set()
            return
        except ApiError as exc:  # the API is unreachable: keep the task going, retry
            log.warning("Run %s: lease renewal failed: %s", self.api.run_id, exc)
            with self._lock:
                self._progress = self._progress or progress
            return
        if status.get("cancel_requested"):
            self.cancel_requested.set()
