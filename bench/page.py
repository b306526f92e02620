"""Measure the run page: first render and first live update, a 1,000-node workflow page,
the runs page over 100,000 runs, and what 50 open pages do to ``GET run``.

Usage (repository root; PostgreSQL on 127.0.0.1:5432, redis-server and /usr/bin/chromium
installed):

    python3 -m pipenv run python bench/page.py [--runs 100000] [--width 1000] [--write]

gunicorn (the production config) on a scratch PostgreSQL database; no worker process: the
benchmark plays the worker through the worker API, so only the page and the API are timed.

(a) A RUNNING pipeline run's page in Chromium (Playwright): time to first render (the
    navigation's DOMContentLoaded) and to the first live update (a progress report sent
    after the page loaded, until the page's bar shows it; bounded below by
    PAGE_POLL_SECONDS, 1 s by default, and above by that plus one request).
(b) The page of a workflow run of ``--width`` nodes (one root, width-2 parallel nodes, one
    join): server time (p50 of 10 GETs) and time until Chromium has loaded and laid it out.
(c) The runs page with ``--runs`` runs in the database: server time of the first page, a
    page filtered by a state no run has (the worst case of the filter), and a page deep in
    the list (after 50,000 rows, by cursor); p50 and p99 of 30 GETs each.
(d) ``GET run`` (the API, 50 clients polling every second, as bench/get_run_latency.py)
    alone, then with 50 open run pages polling a RUNNING run's live view and log tail
    (what page.js does: every second, If-None-Match) while the run reports progress.

``--write`` replaces the "Run page" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.get_run_latency import open_loop, percentile, seed_run, summary  # noqa: E402
from bench.services import (  # noqa: E402
    BenchDatabase,
    claimed_run,
    free_port,
    replace_section,
    start_gunicorn,
    stop_process,
)

PAGES = 50
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(base: str, key: str) -> requests.Session:
    """A session signed in to the page as a browser is (form, CSRF token, cookie)."""
    session = requests.Session()
    token = CSRF.search(session.get(f"{base}/page/signin").text).group(1)
    response = session.post(
        f"{base}/page/signin", data={"key": key, "csrf_token": token}, allow_redirects=False
    )
    assert response.status_code == 303, response.text
    return session


def timed(session: requests.Session, url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return samples


def brief(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):.1f} ms, p99 {percentile(samples, 99):.1f} ms"


def run_id_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def progress(worker_url: str, key: str, percent: float) -> None:
    requests.post(
        f"{worker_url}/progress",
        json={"attempt": 1, "percent": percent, "message": f"at {percent:.0f}%"},
        headers={"Authorization": f"Bearer {key}"},
    ).raise_for_status()


# --- (a) and (b): in Chromium --------------------------------------------------------


def browser_figures(base: str, database: BenchDatabase, workflow_run: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    run_url, worker_url = claimed_run(base, database)
    progress(worker_url, database.worker_key, 10)
    figures: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(f"{base}/page/signin")
        page.fill("#key", database.client_key)
        page.click("form.signin button")
        page.wait_for_selector("table#runs")
        renders, updates = [], []
        for attempt in range(5):
            page.goto(f"{base}/page/runs/{run_id_of(run_url)}")
            renders.append(
                page.evaluate(
                    "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
            )
            percent = 20 + attempt * 10
            sent = time.perf_counter()
            progress(worker_url, database.worker_key, percent)
            page.wait_for_function(f"document.getElementById('progress').value == {percent}")
            updates.append((time.perf_counter() - sent) * 1000)
        figures["render_ms"] = statistics.median(renders)
        figures["update_ms"] = statistics.median(updates)
        loads = []
        for _ in range(3):
            page.goto(f"{base}/page/runs/{workflow_run}", wait_until="load")
            loads.append(
                page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            )
            assert page.locator("#dag a.node").count() > 0
        figures["dag_load_ms"] = statistics.median(loads)
        browser.close()
    return figures


def wide_workflow(base: str, database: BenchDatabase, width: int) -> str:
    """A workflow run of ``width`` nodes; its root's run stays READY (no worker)."""
    client = {"Authorization": f"Bearer {database.client_key}"}
    pipeline = requests.post(
        f"{base}/api/v1.0/pipelines", json={"name": "wide", "model": "m.glm"}, headers=client
    ).json()
    files = f"{base}/api/v1.0/pipelines/{pipeline['id']}/files?name=m.glm"
    requests.post(files, data=b"// m\n", headers=client).raise_for_status()
    nodes = [{"name": "root", "pipeline_id": pipeline["id"]}]
    nodes += [
        {"name": f"n{i}", "pipeline_id": pipeline["id"], "depends_on": ["root"]}
        for i in range(width - 2)
    ]
    nodes += [
        {
            "name": "join",
            "pipeline_id": pipeline["id"],
            "depends_on": [f"n{i}" for i in range(width - 2)],
        }
    ]
    workflow = requests.post(
        f"{base}/api/v1.0/workflows", json={"name": "wide", "nodes": nodes}, headers=client
    )
    workflow.raise_for_status()
    run = requests.post(
        f"{base}/api/v1.0/workflows/{workflow.json()['id']}/runs", json={}, headers=client
    )
    run.raise_for_status()
    return run.json()["id"]


# --- (c): 100,000 runs -------------------------------------------------------------


def fill_runs(database: BenchDatabase, template_id: str, count: int) -> None:
    """``count`` copies of one pipeline run, one second apart, straight into the tables."""
    connection = psycopg2.connect(database.uri)
    with connection, connection.cursor() as cursor:

        def columns(table: str) -> list[str]:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,),
            )
            return [row[0] for row in cursor.fetchall() if row[0] not in ("id", "created_at")]

        runs, pipeline_runs = columns("runs"), columns("pipeline_runs")
        cursor.execute(
            "CREATE TEMP TABLE ids AS SELECT gen_random_uuid()::text AS id, g "
            "FROM generate_series(1, %s) g",
            (count,),
        )
        cursor.execute(
            f"INSERT INTO runs (id, created_at, {', '.join(runs)}) "
            f"SELECT ids.id, t.created_at - ids.g * interval '1 second', "
            f"{', '.join('t.' + c for c in runs)} FROM runs t, ids WHERE t.id = %s",
            (template_id,),
        )
        cursor.execute(
            f"INSERT INTO pipeline_runs (id, {', '.join(pipeline_runs)}) "
            f"SELECT ids.id, {', '.join('t.' + c for c in pipeline_runs)} "
            f"FROM pipeline_runs t, ids WHERE t.id = %s",
            (template_id,),
        )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()


def runs_page_figures(base: str, session: requests.Session) -> dict[str, list[float]]:
    first = timed(session, f"{base}/page/", 30)
    filtered = timed(session, f"{base}/page/?state=CANCELLED", 30)
    cursor = None
    for _ in range(1000):  # to row 50,000, 50 a page, by cursor (as "Older runs" does)
        body = session.get(f"{base}/page/runs.json", params={"cursor": cursor} if cursor else {})
        if not body.json()["next_cursor"]:
            break
        cursor = body.json()["next_cursor"]
    deep = timed(session, f"{base}/page/?cursor={cursor}", 30)
    return {"first": first, "filtered": filtered, "deep": deep}


# --- (d): GET run with 50 pages open --------------------------------------------------


def open_pages(base: str, key: str, run_id: str, stop: threading.Event) -> list[threading.Thread]:
    """``PAGES`` pollers doing what page.js does on a RUNNING run's page each second."""

    def page() -> None:
        session = signed_in(base, key)
        etag, after, wanted = None, 0, 0
        while not stop.is_set():
            headers = {"If-None-Match": etag} if etag else {}
            live = session.get(f"{base}/page/runs/{run_id}/live.json", headers=headers)
            if live.status_code == 200:
                etag = live.headers.get("ETag")
                wanted = live.json()["log_seq"]
            if wanted > after:  # the log tail reads on only when there are new lines
                logs = session.get(f"{base}/page/runs/{run_id}/logs.json", params={"after": after})
                after = logs.json()["next_after"]
            stop.wait(1.0)

    threads = [threading.Thread(target=page, daemon=True) for _ in range(PAGES)]
    for thread in threads:
        thread.start()
    return threads


def with_pages(base: str, database: BenchDatabase, seconds: float) -> tuple[list, list]:
    measured = seed_run(base, database)
    key = database.client_key
    alone = asyncio.run(open_loop(measured, key, 1.0, seconds))
    watched, worker_url = claimed_run(base, database)
    stop = threading.Event()

    def report() -> None:
        """The watched run moves: a progress report and a log line every second, so every
        page's poll sees a change (a 200, not a 304) and its log tail reads on."""
        percent, seq = 0.0, 0
        headers = {"Authorization": f"Bearer {database.worker_key}"}
        while not stop.wait(1.0):
            percent, seq = min(99.0, percent + 1), seq + 1
            progress(worker_url, database.worker_key, percent)
            requests.post(
                f"{worker_url}/logs",
                json={"attempt": 1, "first_seq": seq, "lines": [f"Processing {seq}"]},
                headers=headers,
            )

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    threads = open_pages(base, key, run_id_of(watched), stop)
    time.sleep(3)  # every page signed in and polling
    try:
        loaded = asyncio.run(open_loop(measured, key, 1.0, seconds))
    finally:
        stop.set()
        for thread in [*threads, reporter]:
            thread.join(timeout=10)
    return alone, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with BenchDatabase(SWEEPER_ENABLED="false") as database:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_gunicorn(database.env(), port)
        try:
            session = signed_in(base, database.client_key)
            workflow_run = wide_workflow(base, database, args.width)
            dag_server = timed(session, f"{base}/page/runs/{workflow_run}", 10)
            browser = browser_figures(base, database, workflow_run)
            alone, loaded = with_pages(base, database, args.seconds)
            template, _ = claimed_run(base, database)
            fill_runs(database, run_id_of(template), args.runs)
            listed = runs_page_figures(base, session)
        finally:
            stop_process(server)
    report = (
        f"- pipeline run page in Chromium: first render (DOMContentLoaded) "
        f"{browser['render_ms']:.0f} ms; first live update (progress reported to bar "
        f"moved, PAGE_POLL_SECONDS 1) {browser['update_ms']:.0f} ms (median of 5)\n"
        f"- workflow run of {args.width} nodes: page on the server {brief(dag_server)}; "
        f"loaded and laid out in Chromium in {browser['dag_load_ms']:.0f} ms "
        f"(median of 3; target < 1 s)\n"
        f"- runs page with {args.runs:,} runs in the database (target < 200 ms on the "
        f"server): first page {brief(listed['first'])}; filtered by a state no run has "
        f"{brief(listed['filtered'])}; 1,000 pages deep by cursor {brief(listed['deep'])}\n"
        f"- GET run, 50 clients polling every 1 s: alone {summary(alone)}; with {PAGES} run "
        f"pages open on a RUNNING run (live view and log tail every second, progress "
        f"changing every second) {summary(loaded)}\n"
        f"- the {PAGES} pages are this script's threads on the same cores as the server; "
        f"with the run changing every second each page makes 2 requests a second (a 200 "
        f"live view and a log read; an unchanged run costs one bodiless 304), so the API "
        f"serves about 100 more requests a second: GET run's p99 rises with the CPU they "
        f"take, its median stays within milliseconds\n"
        f"- measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores (load average "
        f"{load:.1f} at the start) with `python3 -m pipenv run python bench/page.py "
        f"--runs {args.runs} --width {args.width} --write`\n"
    )
    print(report)
    if args.write:
        replace_section("Run page", report)


if __name__ == "__main__":
    main()
