"""Real processes for the end-to-end tests: Redis, an S3 server (moto), PostgreSQL, the API
under gunicorn and Celery workers, each a subprocess in its own process group with its
output in a log file; plus a small HTTP client for the service's API.

Every wait is bounded and fails with a message that says what was awaited and shows the
last lines of the relevant log.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3
import requests

REPO = Path(__file__).resolve().parents[2]
E2E_MODELS = Path(__file__).resolve().parent / "models"
PYTHON = sys.executable
API = "/api/v1.0"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")

# Settings shortened so recovery can be observed within a test.
FAST_RECOVERY = {
    "RUN_LEASE_SECONDS": "5",
    "SWEEP_INTERVAL_SECONDS": "1",
    "REDISPATCH_AFTER_SECONDS": "10",
    "TIMEOUT_GRACE_SECONDS": "5",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "SCHEDULE_MIN_INTERVAL_SECONDS": "1",  # schedules as often as a test needs
}

# Test servers that runs may legitimately reach (inputs, callbacks) listen on this loopback
# address, the only one the stack allows (OUTBOUND_ALLOWED_HOSTS); 127.0.0.1 stays
# forbidden, so a server there proves that the SSRF guard holds.
ALLOWED_TEST_HOST = "127.0.0.2"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    diagnostics: Callable[[], str] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling; reported on timeout
            last_error = exc
        if time.monotonic() >= deadline:
            message = f"Timed out after {timeout:.0f} s waiting for {what}"
            if last_error is not None:
                message += f" (last error: {last_error!r})"
            if diagnostics is not None:
                message += "\n" + diagnostics()
            raise AssertionError(message)
        time.sleep(interval)


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- child processes ----------------------------------------------------------------------


class Service:
    """A subprocess in its own process group, its output appended to one log file."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path = REPO,
        ready: Callable[[], Any] | None = None,
        ready_timeout: float = 30.0,
    ):
        self.name = name
        self.command = command
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: bool = True) -> Service:
        assert not self.running(), f"{self.name} is already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes its children too
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        if self.ready is None:
            return

        def check() -> Any:
            if not self.running():
                raise AssertionError(
                    f"{self.name} exited with code {self.process.returncode} while starting"
                    f"\n--- {self.log_path} ---\n{tail(self.log_path)}"
                )
            return self.ready()

        deadline = time.monotonic() + self.ready_timeout
        while True:
            if not self.running():
                check()
            try:
                if self.ready():
                    return
            except Exception:  # noqa: BLE001, S110 - not ready yet
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name} not ready after {self.ready_timeout:.0f} s"
                    f"\n--- {self.log_path} ---\n{tail(self.log_path)}"
                )
            time.sleep(0.2)

    def _signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group (the process and every child it started)."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._note(f"killed (SIGKILL to process group {self.process.pid})")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL the process group if it has not exited in ``timeout`` s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note(f"did not stop within {timeout} s of SIGTERM; killing")
        # Children still alive in the group (a simulation) go too.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._note(f"stopped (exit code {self.process.returncode})")

    def restart(self) -> None:
        self.stop()
        self.start()

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "a") as log:
            log.write(f"\n===== {self.name} {text}\n")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def redis_service(log_dir: Path, port: int) -> Service:
    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(log_dir), "--protected-mode", "no",
    ]  # fmt: skip
    return Service("redis", command, os.environ, log_dir, ready=ping, ready_timeout=15)


def moto_service(log_dir: Path, port: int) -> Service:
    url = f"http://127.0.0.1:{port}"
    command = [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Service(
        "moto-s3",
        command,
        os.environ,
        log_dir,
        ready=lambda: requests.get(f"{url}/moto-api/", timeout=1).status_code < 500,
        ready_timeout=30,
    )


def create_bucket(endpoint: str, bucket: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="e2e",
        aws_secret_access_key="e2e-secret",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)


def run_command(command: list[str], env: Mapping[str, str], what: str, timeout: float = 60) -> str:
    """Run a short command to completion; fail with its output if it fails or hangs."""
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{what}: no answer within {timeout} s ({command})") from exc
    if done.returncode != 0:
        raise AssertionError(
            f"{what} failed with code {done.returncode}: {command}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


def create_key(env: Mapping[str, str], name: str, permission: str) -> str:
    out = run_command(
        [PYTHON, "-m", "flask", "--app", "app", "create-application-key", "-n", name,
         "-p", permission],
        env,
        f"create-application-key {permission}",
    )  # fmt: skip
    for line in out.splitlines():
        if line.startswith("API_TOKEN="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"create-application-key printed no API_TOKEN= line:\n{out}")


def http_ready(url: str) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=2).status_code == 200


def api_service(log_dir: Path, env: Mapping[str, str], port: int, name: str = "api") -> Service:
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    command = [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
    return Service(
        name,
        command,
        env,
        log_dir,
        ready=http_ready(f"http://127.0.0.1:{port}/healthcheck"),
        ready_timeout=45,
    )


def worker_service(
    log_dir: Path, env: Mapping[str, str], name: str, concurrency: int = 2
) -> Service:
    command = [
        PYTHON, "-m", "celery", "-A", "app.worker.celery_app", "worker",
        "--pool", "threads", "--concurrency", str(concurrency),
        "-Q", env["CELERY_TASK_QUEUE"], "--loglevel", "INFO",
        "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    log_path = log_dir / f"{name}.log"

    def ready() -> bool:
        # Celery prints "ready." once it consumes from the queue.
        text = log_path.read_text(errors="replace")
        start = text.rfind("===== start #")
        return " ready." in text[start:]

    return Service(name, command, env, log_dir, ready=ready, ready_timeout=60)


# --- local HTTP servers that runs reach (inputs, callbacks) --------------------------------


class FileServer:
    """Serves a folder from a thread and records the paths requested.

    It listens on ALLOWED_TEST_HOST unless told otherwise: pass ``host="127.0.0.1"`` for a
    server that the service must never reach.
    """

    def __init__(self, root: Path, host: str = ALLOWED_TEST_HOST):
        self.root = root
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any):
                super().__init__(*args, directory=str(root), **kwargs)

            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                server.requests.append((self.path, int(code) if str(code).isdigit() else 0))

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CallbackReceiver:
    """Records the POSTs it receives (raw body, headers, time) from a thread.

    Answers each POST with the next status of ``statuses`` and 200 once they are used up,
    so a test can make the first deliveries fail. Listens on ALLOWED_TEST_HOST.
    """

    def __init__(self, statuses: Iterable[int] = (), host: str = ALLOWED_TEST_HOST):
        self.statuses = list(statuses)
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                            "at": time.monotonic(),
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def posts(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the API client ------------------------------------------------------------------------


class Client:
    """A thin requests wrapper for the client API (PIPELINES_CLIENT key)."""

    def __init__(self, base_url: str, token: str, diagnostics: Callable[[], str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.diagnostics = diagnostics
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.created: list[tuple[str, str]] = []  # (pipeline id, run id) of runs made

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    # pipelines and files

    def create_pipeline(self, model: str, **fields: Any) -> dict[str, Any]:
        body = {"name": fields.pop("name", f"e2e-{uuid.uuid4().hex[:6]}"), "model": model}
        body.update(fields)
        response = self.post(f"{API}/pipelines", json=body)
        assert response.status_code == 201, (
            f"create pipeline: {response.status_code} {response.text}"
        )
        return response.json()

    def upload(self, pipeline_id: str, name: str, source: Path | bytes) -> dict[str, Any]:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        response = self.post(
            f"{API}/pipelines/{pipeline_id}/files",
            params={"name": name},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code in (200, 201), (
            f"upload {name}: {response.status_code} {response.text}"
        )
        body = response.json()
        assert body["size"] == len(data) and body["sha256"] == sha256_of(data), body
        return body

    def pipeline_with_files(
        self, model: str, files: Iterable[tuple[str, Path | bytes]], **fields: Any
    ) -> dict[str, Any]:
        pipeline = self.create_pipeline(model, **fields)
        for name, source in files:
            self.upload(pipeline["id"], name, source)
        return pipeline

    # runs

    def run_path(self, pipeline_id: str, run_id: str = "") -> str:
        base = f"{API}/pipelines/{pipeline_id}/runs"
        return f"{base}/{run_id}" if run_id else base

    def create_run_response(
        self, pipeline_id: str, body: dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        response = self.post(self.run_path(pipeline_id), json=body or {}, **kwargs)
        if response.status_code == 201:
            self.created.append((pipeline_id, response.json()["id"]))
        return response

    def create_run(self, pipeline_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.create_run_response(pipeline_id, body)
        assert response.status_code == 201, f"create run: {response.status_code} {response.text}"
        return response.json()

    def get_run(self, pipeline_id: str, run_id: str) -> dict[str, Any]:
        response = self.get(self.run_path(pipeline_id, run_id))
        assert response.status_code == 200, f"get run: {response.status_code} {response.text}"
        return response.json()

    def cancel(self, pipeline_id: str, run_id: str) -> requests.Response:
        return self.post(f"{self.run_path(pipeline_id, run_id)}/cancel")

    def logs(self, pipeline_id: str, run_id: str, after: int = 0, limit: int = 1000) -> dict:
        response = self.get(
            f"{self.run_path(pipeline_id, run_id)}/logs", params={"after": after, "limit": limit}
        )
        assert response.status_code == 200, f"logs: {response.status_code} {response.text}"
        return response.json()

    def all_logs(self, pipeline_id: str, run_id: str, page: int = 1000) -> list[dict]:
        lines: list[dict] = []
        after = 0
        for _ in range(10_000):
            body = self.logs(pipeline_id, run_id, after=after, limit=page)
            lines.extend(body["lines"])
            if not body["lines"]:
                return lines
            after = body["next_after"]
        raise AssertionError("log paging did not end")

    def wait_for_state(
        self,
        pipeline_id: str,
        run_id: str,
        states: str | Iterable[str],
        timeout: float,
        interval: float = 0.2,
    ) -> dict[str, Any]:
        """Poll the run until its state is one of ``states``; fail after ``timeout`` s.

        Fails at once if the run reaches a terminal state that is not wanted.
        """
        wanted = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            try:
                last = self.get_run(pipeline_id, run_id)
            except (requests.RequestException, AssertionError) as exc:
                last = last or {"error": repr(exc)}
            else:
                if last["state"] in wanted:
                    return last
                if last["state"] in TERMINAL:
                    raise AssertionError(
                        f"Run {run_id} ended {last['state']}, expected {sorted(wanted)}:\n"
                        f"{describe(last)}{self._diag()}"
                    )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Run {run_id} not in {sorted(wanted)} after {timeout:.0f} s; last seen:\n"
                    f"{describe(last)}{self._diag()}"
                )
            time.sleep(interval)

    def wait_terminal(self, pipeline_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        return self.wait_for_state(pipeline_id, run_id, TERMINAL, timeout)

    def _diag(self) -> str:
        return "\n" + self.diagnostics() if self.diagnostics else ""

    def download(self, artifact: dict[str, Any]) -> requests.Response:
        """GET an artifact's URL without following the redirect."""
        return self.get(artifact["url"], allow_redirects=False)


def describe(run: dict[str, Any] | None) -> str:
    if not run:
        return "<no run>"
    if "states" not in run:
        return repr(run)
    history = "\n".join(
        f"  {s.get('from_state')} -> {s['state']} (attempt {s['attempt']}) at {s['at']}: "
        f"{s.get('reason')}"
        for s in run["states"]
    )
    return (
        f"run {run['id']} state={run['state']} attempt={run['attempt']} error={run.get('error')}\n"
        f"progress={run.get('progress')}\nhistory:\n{history}\n"
        f"artifacts={[(a['name'], a['size'], a.get('partial')) for a in run.get('artifacts', [])]}"
    )


def artifact(run: dict[str, Any], name: str) -> dict[str, Any]:
    for item in run["artifacts"]:
        if item["name"] == name or item["name"].rsplit("/", 1)[-1] == name:
            return item
    raise AssertionError(
        f"Run has no artifact {name!r}; it has {[a['name'] for a in run['artifacts']]}"
    )


def history(run: dict[str, Any]) -> list[str]:
    return [change["state"] for change in run["states"]]
