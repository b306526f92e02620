"""Measure ``GET /pipelines/{id}/runs/{id}`` latency against gunicorn + PostgreSQL.

Usage (from the repository root, PostgreSQL on 127.0.0.1:5432, redis-server installed):

    python3 -m pipenv run python bench/get_run_latency.py [--write]

Creates a scratch database, starts gunicorn (2 workers x 8 threads, the production
config), makes one finished run with a realistic history (3 states, 3 artifacts), then
measures with 50 concurrent clients, each on its own keep-alive connection, two ways:

- open loop: 50 clients each polling every ``--interval`` seconds (a status page or a
  CLI following its runs);
- closed loop: every client sends its next request the moment the last one returns: the
  saturation throughput, where latency is queueing time.

Both load generators are this script's own asyncio clients (nothing to install beyond the
Pipfile). The client shares the machine's cores with the server; on 2 cores it takes a
share of the CPU that a separate load machine would not, so the closed-loop figures are a
lower bound of the server's throughput.

``--write`` replaces the "GET run latency" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import re
import statistics
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
CONTENT_LENGTH = re.compile(rb"\r\nContent-Length: *(\d+)", re.I)


def seed_run(base: str, database: BenchDatabase) -> str:
    """Create a COMPLETED run with 3 artifacts; return its URL."""
    url, worker = claimed_run(base, database)
    headers = {"Authorization": f"Bearer {database.worker_key}"}
    for name in ("a.csv", "b.csv", "c.csv"):
        requests.put(f"{worker}/artifacts/{name}?attempt=1", data=b"1,2\n", headers=headers)
    requests.post(f"{worker}/state", json={"attempt": 1, "state": "COMPLETED"}, headers=headers)
    return url


@dataclasses.dataclass
class Connection:
    """One keep-alive HTTP/1.1 connection that sends the same authorized GET again and again."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    request: bytes

    @classmethod
    async def open(cls, url: str, key: str) -> Connection:
        match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
        host, port, path = match.group(1), int(match.group(2)), match.group(3)
        reader, writer = await asyncio.open_connection(host, port)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
        return cls(reader, writer, request.encode())

    async def get(self) -> float:
        """Send the GET, read the whole 200 response; return the milliseconds it took."""
        start = time.perf_counter()
        self.writer.write(self.request)
        await self.writer.drain()
        header = await self.reader.readuntil(b"\r\n\r\n")
        if not header.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"unexpected answer: {header.splitlines()[0]!r}")
        await self.reader.readexactly(int(CONTENT_LENGTH.search(header).group(1)))
        return (time.perf_counter() - start) * 1000

    def close(self) -> None:
        self.writer.close()


async def _poller(url: str, key: str, interval: float, steady: float, until: float,
                  samples: list[float]) -> None:  # fmt: skip
    # Clients poll out of phase, as independent pollers do (a synchronized start would
    # measure bursts of 50 simultaneous requests instead).
    await asyncio.sleep(random.uniform(0, interval))
    connection = await Connection.open(url, key)
    next_at = time.perf_counter()
    while time.perf_counter() < until:
        started = time.perf_counter()
        took = await connection.get()
        if started >= steady:  # after every client has connected: the steady state
            samples.append(took)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    connection.close()


async def open_loop(url: str, key: str, interval: float, seconds: float) -> list[float]:
    """Latencies (ms) of 50 clients each polling every ``interval`` s for ``seconds``."""
    samples: list[float] = []
    # The first interval is the clients connecting (at random moments); the samples are
    # the ``seconds`` after it.
    steady = time.perf_counter() + interval
    until = steady + seconds
    await asyncio.gather(
        *(_poller(url, key, interval, steady, until, samples) for _ in range(CLIENTS))
    )
    return samples


async def _hammer(url: str, key: str, steady: float, until: float,
                  samples: list[float]) -> None:  # fmt: skip
    connection = await Connection.open(url, key)
    while time.perf_counter() < until:
        started = time.perf_counter()
        took = await connection.get()
        if started >= steady:
            samples.append(took)
    connection.close()


async def closed_loop(url: str, key: str, seconds: float, ramp: float = 1.0) -> list[float]:
    """Latencies (ms) of 50 clients sending back to back for ``seconds`` after a ramp-up."""
    samples: list[float] = []
    steady = time.perf_counter() + ramp
    until = steady + seconds
    await asyncio.gather(*(_hammer(url, key, steady, until, samples) for _ in range(CLIENTS)))
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def summary(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples):.1f} ms, p90 {percentile(samples, 90):.1f} ms, "
        f"p99 {percentile(samples, 99):.1f} ms, max {max(samples):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between polls")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    with BenchDatabase() as database:
        port = free_port()
        server = start_gunicorn(database.env(), port)
        try:
            url = seed_run(f"http://127.0.0.1:{port}", database)
            key = database.client_key
            # Warm up at full concurrency: every gunicorn thread opens its database
            # connection now, as it has in a service that has been up for a while.
            asyncio.run(closed_loop(url, key, 3))
            polled = asyncio.run(open_loop(url, key, args.interval, args.seconds))
            hammered = asyncio.run(closed_loop(url, key, args.seconds))
        finally:
            stop_process(server)
    report = (
        f"- {CLIENTS} clients polling every {args.interval} s (open loop): {summary(polled)} "
        f"({len(polled)} requests, {CLIENTS / args.interval:.0f} requests/s offered)\n"
        f"- {CLIENTS} clients back to back (closed loop, keep-alive, asyncio client on the "
        f"same machine): {summary(hammered)}, {len(hammered) / args.seconds:.0f} requests/s\n"
        f"- measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores (load average "
        f"{load:.1f} at the start) with `python3 -m pipenv run python bench/get_run_latency.py "
        f"--interval {args.interval} --seconds {args.seconds:g} --write`\n"
    )
    print(report)
    if args.write:
        replace_section("GET run latency", report)


if __name__ == "__main__":
    main()
