"""Show that a 1 GB artifact is streamed, not held in memory, by the API.

Usage (repository root; PostgreSQL on 127.0.0.1:5432, redis-server installed):

    python3 -m pipenv run python bench/large_artifact.py [--megabytes 1024] [--s3] [--write]

Starts gunicorn (one worker) on a scratch database, streams an artifact of the given size
through the worker upload endpoint (generated on the fly, never in memory here either),
downloads it back, and reports the API worker's peak resident memory (VmHWM) before and
after. ``--s3`` stores into a moto S3 server over HTTP instead of the local folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.services import (  # noqa: E402
    BenchDatabase,
    claimed_run,
    free_port,
    replace_section,
    start_gunicorn,
    stop_process,
    wait_http,
)

CHUNK = 1024 * 1024


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gunicorn_worker(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def body(megabytes: int, digest: hashlib._Hash):  # type: ignore[no-untyped-def]
    block = os.urandom(CHUNK)
    for _ in range(megabytes):
        digest.update(block)
        yield block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--s3", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    extra: dict[str, str] = {"GUNICORN_WORKERS": "1"}
    moto = None
    if args.s3:
        s3_port = free_port()
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{s3_port}/moto-api/")
        requests.put(f"http://127.0.0.1:{s3_port}/bench")
        extra.update(
            S3_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}", S3_BUCKET="bench",
            S3_ACCESS_KEY_ID="bench", S3_SECRET_ACCESS_KEY="bench",
        )  # fmt: skip
    try:
        with BenchDatabase(**extra) as database:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_gunicorn(database.env(), port)
            try:
                result = measure(base, database, server.pid, args.megabytes)
            finally:
                stop_process(server)
    finally:
        if moto is not None:
            stop_process(moto)
    store = "S3 (moto server over HTTP)" if args.s3 else "local store"
    flag = " --s3" if args.s3 else ""
    report = (
        f"- {args.megabytes} MB artifact through the API into the {store}: upload "
        f"{result['upload']:.1f} s, download {result['download']:.1f} s, checksum "
        f"{'matches' if result['ok'] else 'DIFFERS'}; API worker peak RSS "
        f"{result['rss_before']:.0f} MB before, {result['rss_after']:.0f} MB after\n"
        f"- measured {time.strftime('%Y-%m-%d')} with "
        f"`python3 -m pipenv run python bench/large_artifact.py{flag} --write`\n"
    )
    print(report)
    if args.write:
        replace_section(f"Large artifact ({store})", report)


def measure(base: str, database: BenchDatabase, master: int, megabytes: int) -> dict:
    client = {"Authorization": f"Bearer {database.client_key}"}
    worker = {"Authorization": f"Bearer {database.worker_key}"}
    run_url, worker_url = claimed_run(base, database)
    pid = gunicorn_worker(master)
    rss_before = peak_rss_mb(pid)
    sent = hashlib.sha256()
    start = time.perf_counter()
    uploaded = requests.put(
        f"{worker_url}/artifacts/big.bin?attempt=1",
        data=body(megabytes, sent), headers=worker,
    )  # fmt: skip
    uploaded.raise_for_status()
    upload = time.perf_counter() - start
    received = hashlib.sha256()
    start = time.perf_counter()
    with requests.get(
        f"{run_url}/artifacts/big.bin",
        headers=client, stream=True,
    ) as response:  # fmt: skip
        for chunk in response.iter_content(CHUNK):
            received.update(chunk)
    download = time.perf_counter() - start
    ok = sent.hexdigest() == received.hexdigest() == uploaded.json()["sha256"]
    return {
        "upload": upload, "download": download, "ok": ok,
        "rss_before": rss_before, "rss_after": peak_rss_mb(pid),
    }  # fmt: skip


if __name__ == "__main__":
    main()
