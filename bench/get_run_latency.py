"""Measure ``GET /pipelines/{id}/runs/{id}`` latency against gunicorn + PostgreSQL.

Usage (from the repository root, PostgreSQL on 127.0.0.1:5432, wrk installed):

    python3 -m pipenv run python bench/get_run_latency.py [--write]

Creates a scratch database, starts gunicorn (2 workers x 8 threads, the production
config), makes one finished run with a realistic history (3 states, 3 artifacts), then
measures with 50 concurrent clients two ways:

- open loop: 50 clients each polling every ``--interval`` seconds (a status page or a
  CLI following its runs), measured by this script's own asyncio client;
- closed loop: ``wrk -c50``, every client sending its next request the moment the last
  one returns: the saturation throughput, where latency is queueing time.

``--write`` replaces the "GET run latency" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
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
)

CLIENTS = 50


def seed_run(base: str, database: BenchDatabase) -> str:
    """Create a COMPLETED run with 3 artifacts; return its URL."""
    url, worker = claimed_run(base, database)
    headers = {"Authorization": f"Bearer {database.worker_key}"}
    for name in ("a.csv", "b.csv", "c.csv"):
        requests.put(f"{worker}/artifacts/{name}?attempt=1", data=b"1,2\n", headers=headers)
    requests.post(f"{worker}/state", json={"attempt": 1, "state": "COMPLETED"}, headers=headers)
    return url


async def _client(host: str, port: int, path: str, key: str, interval: float,
                  until: float, seconds: float, samples: list[float]) -> None:  # fmt: skip
    # Clients poll out of phase, as independent pollers do (a synchronized start would
    # measure bursts of 50 simultaneous requests instead).
    await asyncio.sleep(random.uniform(0, interval))
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    steady = until - seconds
    next_at = time.perf_counter()
    while time.perf_counter() < until:
        start = time.perf_counter()
        writer.write(request)
        await writer.drain()
        header = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", header, re.I).group(1))
        await reader.readexactly(length)
        if start >= steady:  # after every client has connected: the steady state
            samples.append((time.perf_counter() - start) * 1000)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    writer.close()


async def open_loop(url: str, key: str, interval: float, seconds: float) -> list[float]:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    samples: list[float] = []
    # The first interval is the clients connecting (at random moments); the samples are
    # the ``seconds`` after it.
    until = time.perf_counter() + interval + seconds
    await asyncio.gather(
        *(_client(host, port, path, key, interval, until, seconds, samples) for _ in range(CLIENTS))
    )
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def closed_loop(url: str, key: str, seconds: int) -> str:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {key}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    p50 = re.search(r"50%\s+(\S+)", output).group(1)
    p99 = re.search(r"99%\s+(\S+)", output).group(1)
    rps = re.search(r"Requests/sec:\s+(\S+)", output).group(1)
    return f"p50 {p50}, p99 {p99}, {rps} requests/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between polls")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    with BenchDatabase() as database:
        port = free_port()
        server = start_gunicorn(database.env(), port)
        try:
            base = f"http://127.0.0.1:{port}"
            url = seed_run(base, database)
            # Warm up at full concurrency: every gunicorn thread opens its database
            # connection now, as it has in a service that has been up for a while.
            closed_loop(url, database.client_key, 3)
            samples = asyncio.run(open_loop(url, database.client_key, args.interval, args.seconds))
            rate = CLIENTS / args.interval
            open_result = (
                f"p50 {statistics.median(samples):.1f} ms, p90 {percentile(samples, 90):.1f} ms, "
                f"p99 {percentile(samples, 99):.1f} ms, max {max(samples):.1f} ms "
                f"({len(samples)} requests, {rate:.0f} requests/s offered)"
            )
            closed_result = closed_loop(url, database.client_key, int(args.seconds))
        finally:
            stop_process(server)
    report = (
        f"- 50 clients polling every {args.interval} s (open loop): {open_result}\n"
        f"- 50 clients back to back (closed loop, `wrk -t2 -c50`): {closed_result}\n"
        f"- measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores with "
        f"`python3 -m pipenv run python bench/get_run_latency.py --write`\n"
    )
    print(report)
    if args.write:
        replace_section("GET run latency", report)


if __name__ == "__main__":
    main()
