"""HTTP client of the worker API, with retries for an API that is restarting."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)


class ApiError(Exception):
    """The API refused a request (``code`` says why) or could not be reached (no code)."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class StaleAttempt(ApiError):
    """STALE_ATTEMPT: this attempt no longer owns the run (cancelled, taken over, ended)."""


class NotClaimable(ApiError):
    """RUN_NOT_CLAIMABLE: the run is not READY and due (another delivery took it, it was
    cancelled, or it is backing off before a retry): this delivery has nothing to do."""


# The error codes (app/errors.py ErrorCode) the worker acts on; any other refusal is an
# ApiError. Branching on the code, not the status: a 409 can mean several things.
_ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    "STALE_ATTEMPT": StaleAttempt,
    "RUN_NOT_CLAIMABLE": NotClaimable,
}


def _error_of(method: str, path: str, response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    text = f"{method} {path}: HTTP {response.status_code} {code or ''} {message or ''}"
    return _ERRORS_BY_CODE.get(code or "", ApiError)(text.strip()[:500], code)


def _retrying_session(token: str) -> requests.Session:
    session = requests.Session()
    # Connection errors and 502/503/504 are retried for about half a minute with back-off
    # (an API restart); every POST here is safe to repeat (see worker_routes.py).
    retry = Retry(
        total=8,
        connect=8,
        read=2,
        status=8,
        backoff_factor=0.25,
        backoff_max=8,
        status_forcelist=(502, 503, 504),
        allowed_methods=None,
        raise_on_status=False,
    )
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers["Authorization"] = f"Bearer {token}"
    return session


class WorkerApi:
    """The calls a worker makes for one run."""

    def __init__(self, server: str, token: str, run_id: str, timeout: float = 30):
        self.server = server.rstrip("/")
        self.run_id = run_id
        self.timeout = timeout
        self._token = token
        self.session = _retrying_session(token)
        self.attempt = 0

    def clone(self) -> WorkerApi:
        """The same run and attempt over its own connections (for another thread)."""
        other = WorkerApi(self.server, self._token, self.run_id, self.timeout)
        other.attempt = self.attempt
        return other

    def _url(self, path: str) -> str:
        if path.startswith("/"):  # a URL path the API built: it carries any mount prefix
            return urljoin(self.server, path)
        return f"{self.server}/api/v1.0/worker/runs/{self.run_id}/{path}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, self._url(path), timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise _error_of(method, path, response)
        return response

    def claim(self, worker_id: str, claim_token: str) -> dict[str, Any]:
        """Start an attempt; the token makes a retried POST return the same attempt."""
        body = {"worker_id": worker_id, "claim_token": claim_token}
        claim = self._call("POST", "claim", json=body).json()
        self.attempt = claim["attempt"]
        return claim

    def heartbeat(self) -> dict[str, Any]:
        return self._call("POST", "heartbeat", json={"attempt": self.attempt}).json()

    def progress(self, percent: float | None, message: str | None) -> dict[str, Any]:
        body = {"attempt": self.attempt, "percent": percent, "message": message}
        return self._call("POST", "progress", json=body).json()

    def logs(self, first_seq: int, lines: list[str]) -> int:
        body = {"attempt": self.attempt, "first_seq": first_seq, "lines": lines}
        return self._call("POST", "logs", json=body).json()["next_seq"]

    def upload_artifact(self, name: str, stream: BinaryIO, partial: bool) -> dict[str, Any]:
        params = {"attempt": self.attempt, "partial": str(partial).lower()}
        headers = {"Content-Type": "application/octet-stream"}
        return self._call(
            "PUT", f"artifacts/{name}", params=params, data=stream, headers=headers
        ).json()

    def finish(self, state: str, error: dict[str, Any] | None) -> dict[str, Any]:
        body = {"attempt": self.attempt, "state": state, "error": error}
        return self._call("POST", "state", json=body).json()

    def flow_steps(self, steps: list[dict[str, Any]]) -> None:
        self._call("PUT", "flow-steps", json={"attempt": self.attempt, "steps": steps})

    def unused_parameters(self, names: list[str]) -> None:
        body = {"attempt": self.attempt, "names": names}
        self._call("POST", "unused-parameters", json=body)

    def announce_kinds(self, worker: str, kinds: list[str], *, once: bool = False) -> None:
        """Say which job kinds this worker runs (not tied to a run). ``once``: a single try,
        for a worker shutting down, which must not wait for an API that is down."""
        path, body = "/api/v1.0/worker/job-kinds", {"worker_id": worker, "kinds": kinds}
        if not once:
            self._call("PUT", path, json=body)
            return
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            requests.put(self._url(path), json=body, headers=headers, timeout=2)
        except requests.RequestException as exc:
            raise ApiError(f"PUT {path}: {type(exc).__name__}") from exc

    def download(self, path: str) -> Iterator[bytes]:
        """Stream a file the API serves (a pipeline file), in 1 MB chunks."""
        response = self._call("GET", path, stream=True)
        return response.iter_content(1024 * 1024)
