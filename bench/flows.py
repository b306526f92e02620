"""Measure flows (issue 8) on one generated data set of interval meter readings.

Usage (repository root; PostgreSQL on 127.0.0.1:5432, the redis-server binary):

    python3 -m pipenv run python bench/flows.py [--rows 10000000] [--repeat 3] [--write]

The data set: 15-minute readings of ``--rows`` (rounded up to whole meters) over 14 days,
meters on feeders, tariffs by customer class, written by DuckDB into a source DuckDB file
under FLOWS_DATA_ROOT. The graph: 7 transforms (a staging filter of the readings, daily
energy per meter, meter info, feeder load per interval, and the 3 published tables:
feeder_daily, feeder_loading, billing). Production shape: gunicorn + PostgreSQL + a private
Redis + one data worker (Celery, flow queue, concurrency 1); every flow runs in its own
engine process.

(a) The flow, POST /flows to COMPLETED seen by GET (ingest of the sources into the run's
    working database, the transforms, publish to a DuckDB target), against DuckDB running
    the same SQL in this process: a fresh database file with the source attached, each
    transform a CREATE TABLE in the flow's own order. Median of ``--repeat`` runs each after
    one warm-up; the results of both (and of dbt) are compared.
(b) The same graph as dbt models (``{{ ref() }}``/``{{ source() }}`` in place of the
    names, materialized as tables, threads 1) run by ``dbt run`` from dbt-core with
    dbt-duckdb in its own virtualenv (bench/.venv-dbt; see bench/flows_dbt.py; ``--install-dbt``
    creates it). Wall time of the command; dbt's own per-model times added up beside it.
(c) Cancel: a flow whose transform is a long query on the readings; POST cancel one second
    into that query, to CANCELLED seen by GET (polled every 50 ms). Three times.
(d) Ingest from PostgreSQL: the readings copied into a PostgreSQL database made for the run
    (dropped at the end), ingested by a flow; rows / the ingest step's seconds, and the rate
    of the same COPY out of PostgreSQL alone for reference.

No DuckDB threads or memory settings are set anywhere: the flow engine, the direct run and
dbt all use DuckDB's defaults (all cores, 80% of memory).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import flows_dbt  # noqa: E402
from bench.services import (  # noqa: E402
    ADMIN_DSN,
    BenchDatabase,
    free_port,
    replace_section,
    start_gunicorn,
    start_worker,
    stop_process,
)
from bench.workflows import Bench  # noqa: E402

INTERVALS = 96 * 14  # 15-minute readings over 14 days, per meter
METERS_PER_FEEDER = 100
SOURCES = ["readings", "meters", "feeders", "tariffs"]
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
# {name} is a source table or another transform: the plain name in the flow and the direct
# run, {{ source() }} or {{ ref() }} in dbt. DuckDB's dialect.
TRANSFORMS = [
    {"name": "readings_clean", "persist": False, "sql":
        "SELECT meter_id, ts, kwh FROM {readings} WHERE kwh IS NOT NULL AND kwh >= 0"},
    {"name": "meter_daily", "persist": False, "sql":
        "SELECT meter_id, CAST(ts AS DATE) AS day, sum(kwh) AS kwh, max(kwh) * 4 AS peak_kw,\n"
        "       count(*) AS intervals\n"
        "FROM {readings_clean} GROUP BY ALL"},
    {"name": "meter_info", "persist": False, "sql":
        "SELECT m.id AS meter_id, m.customer_class, f.id AS feeder_id, f.substation,\n"
        "       f.rated_kva\n"
        "FROM {meters} m JOIN {feeders} f ON f.id = m.feeder_id"},
    {"name": "feeder_interval", "persist": False, "sql":
        "SELECT i.feeder_id, r.ts, sum(r.kwh) * 4 AS kw\n"
        "FROM {readings_clean} r JOIN {meter_info} i USING (meter_id) GROUP BY ALL"},
    {"name": "feeder_daily", "persist": True, "sql":
        "SELECT i.feeder_id, d.day, sum(d.kwh) AS kwh, count(*) AS meters\n"
        "FROM {meter_daily} d JOIN {meter_info} i USING (meter_id) GROUP BY ALL"},
    {"name": "feeder_loading", "persist": True, "sql":
        "WITH peaks AS (\n"
        "  SELECT feeder_id, max(kw) AS peak_kw, arg_max(ts, kw) AS peak_at\n"
        "  FROM {feeder_interval} GROUP BY 1)\n"
        "SELECT p.feeder_id, p.peak_kw, p.peak_at, p.peak_kw / f.rated_kva AS loading\n"
        "FROM peaks p JOIN {feeders} f ON f.id = p.feeder_id"},
    {"name": "billing", "persist": True, "sql":
        "SELECT d.meter_id, sum(d.kwh * t.price_per_kwh) AS amount\n"
        "FROM {meter_daily} d JOIN {meter_info} i USING (meter_id)\n"
        "JOIN {tariffs} t ON t.customer_class = i.customer_class GROUP BY 1"},
]  # fmt: skip
# What the persisted tables are compared by: rows and the sum of one column.
FINGERPRINT = {"feeder_daily": "kwh", "feeder_loading": "peak_kw", "billing": "amount"}
# Long on any size: every reading against a million numbers.
SLOW = (
    "SELECT r.meter_id, sum(r.kwh * b.range) AS x\n"
    "FROM readings r CROSS JOIN range(1000000) b GROUP BY 1"
)
PLAIN = {name: name for name in SOURCES + [t["name"] for t in TRANSFORMS]}


def flow_sql(transform: dict[str, Any]) -> dict[str, Any]:
    return {**transform, "sql": transform["sql"].format(**PLAIN)}


# --- the data set -------------------------------------------------------------------------


def make_grid(path: Path, rows: int) -> dict[str, int]:
    """Write the source DuckDB file; return each table's rows. Deterministic (hashes, not
    random()), about one reading in a thousand NULL and one negative, for the staging
    filter to drop."""
    meters = -(-rows // INTERVALS)
    feeders = -(-meters // METERS_PER_FEEDER)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(f"""
            CREATE TABLE feeders AS
            SELECT i::INTEGER AS id, 'F-' || lpad(i::VARCHAR, 4, '0') AS name,
                   ['North', 'South', 'East', 'West'][1 + i % 4] AS substation,
                   (2000 + 500 * (i % 8))::DOUBLE AS rated_kva
            FROM range(1, {feeders} + 1) t(i)""")
        con.execute(f"""
            CREATE TABLE meters AS
            SELECT i::INTEGER AS id, (1 + i % {feeders})::INTEGER AS feeder_id,
                   ['residential', 'commercial', 'industrial'][1 + i % 3] AS customer_class
            FROM range(1, {meters} + 1) t(i)""")
        con.execute("""
            CREATE TABLE tariffs AS
            SELECT * FROM (VALUES ('residential', 0.21::DOUBLE), ('commercial', 0.17),
                                  ('industrial', 0.12)) t(customer_class, price_per_kwh)""")
        con.execute(f"""
            CREATE TABLE readings AS
            SELECT m.id AS meter_id,
                   TIMESTAMP '2026-01-01' + to_minutes(15 * s.i) AS ts,
                   CASE WHEN h % 1000 = 0 THEN NULL
                        WHEN h % 1000 = 1 THEN -1.0
                        ELSE round(CASE m.customer_class WHEN 'residential' THEN 0.3
                                        WHEN 'commercial' THEN 1.2 ELSE 4.0 END
                                   * (0.5 + (h % 10007) / 10007.0), 4)
                   END AS kwh
            FROM meters m CROSS JOIN range({INTERVALS}) s(i),
                 LATERAL (SELECT hash(m.id * 100003 + s.i) AS h)""")
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SOURCES}


def fingerprint(path: Path, prefix: str = "") -> dict[str, tuple[int, float]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: tuple(
                con.execute(f"SELECT count(*), sum({column}) FROM {prefix}{table}").fetchone()
            )
            for table, column in FINGERPRINT.items()
        }


def same(left: dict[str, tuple[int, float]], right: dict[str, tuple[int, float]]) -> bool:
    return left.keys() == right.keys() and all(
        left[k][0] == right[k][0] and abs(left[k][1] - right[k][1]) <= 1e-9 * abs(left[k][1])
        for k in left
    )


# --- (a) direct ---------------------------------------------------------------------------


def direct(source: Path, into: Path, order: list[str]) -> float:
    """The transforms' SQL run by DuckDB in this process, as tables in a fresh file."""
    into.unlink(missing_ok=True)
    sql_of = {t["name"]: flow_sql(t)["sql"] for t in TRANSFORMS}
    started = time.perf_counter()
    with duckdb.connect(str(into)) as con:
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        for name in SOURCES:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM src.main.{name}")
        for name in order:
            con.execute(f"CREATE TABLE {name} AS\n{sql_of[name]}")
    return time.perf_counter() - started


# --- the service --------------------------------------------------------------------------


class FlowBench(Bench):
    """The API client, with the body of a refused request in its error."""

    def post(self, path: str, **kwargs: Any) -> dict:
        response = self.session.post(f"{self.base}/api/v1.0{path}", **kwargs)
        if not response.ok:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return response.json()

    def store(self, name: str, **body: Any) -> str:
        return self.post("/data-stores", json={"name": name, **body})["id"]

    def flow_input(self, name: str, sources: list[dict], target: str, transforms: list) -> dict:
        return self.post(
            "/flow-inputs",
            json={"name": name, "sources": sources, "target_store_id": target,
                  "transforms": transforms},
        )  # fmt: skip

    def run(self, flow_input_id: str, timeout: float = 3600) -> tuple[float, dict]:
        """(seconds from POST to COMPLETED seen, the run)."""
        started = time.perf_counter()
        run = self.post("/flows", json={"flow_input_id": flow_input_id})
        run = self.wait(run["id"], lambda b: b["state"] in TERMINAL, timeout)
        seconds = time.perf_counter() - started
        if run["state"] != "COMPLETED":
            raise RuntimeError(f"flow {run['id']} ended {run['state']}: {run['error']}")
        return seconds, run

    def wait(self, run_id: str, done: Any, timeout: float, interval: float = 0.05) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(f"/flows/{run_id}")
            if done(body):
                return body
            time.sleep(interval)
        raise TimeoutError(f"flow {run_id}: still {body['state']} after {timeout} s")


def step_seconds(run: dict, kind: str) -> float:
    return sum(s["seconds"] or 0.0 for s in run["steps"] if s["kind"] == kind)


def cancel_once(bench: FlowBench, flow_input_id: str) -> float:
    run = bench.post("/flows", json={"flow_input_id": flow_input_id})
    bench.wait(
        run["id"],
        lambda b: any(s["name"] == "transform slow" and s["state"] == "RUNNING"
                      for s in b["steps"]) or b["state"] in TERMINAL,
        600,
    )  # fmt: skip
    time.sleep(1.0)  # well inside the query
    started = time.perf_counter()
    bench.post(f"/flows/{run['id']}/cancel")
    ended = bench.wait(run["id"], lambda b: b["state"] in TERMINAL, 60)
    seconds = time.perf_counter() - started
    if ended["state"] != "CANCELLED":
        raise RuntimeError(f"cancelled flow ended {ended['state']}: {ended['error']}")
    return seconds


# --- (d) PostgreSQL -----------------------------------------------------------------------


class PgReadings:
    """A PostgreSQL database of its own holding the readings (dropped at the end)."""

    def __init__(self, source: Path, scratch: Path):
        self.name = f"flows_bench_src_{uuid.uuid4().hex[:10]}"
        self.dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{self.name}"
        self._admin(f'CREATE DATABASE "{self.name}"')
        csv = scratch / "readings.csv"
        started = time.perf_counter()
        with duckdb.connect(str(source), read_only=True) as con:
            con.execute(f"COPY readings TO '{csv}' (FORMAT csv, HEADER false)")
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE readings (meter_id integer, ts timestamp, kwh double precision)"
            )
            with open(csv) as stream:
                cursor.copy_expert("COPY readings FROM STDIN WITH (FORMAT csv)", stream)
            conn.commit()
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE readings")
        csv.unlink()
        self.load_seconds = time.perf_counter() - started

    def _admin(self, sql: str) -> None:
        conn = psycopg2.connect(ADMIN_DSN)
        conn.autocommit = True
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute(sql)

    def copy_out_rate(self, rows: int) -> float:
        """Rows per second of ``COPY ... TO STDOUT`` into nothing: the server and driver
        alone, the ceiling of any ingest through them."""

        class Sink:
            def write(self, data: Any) -> int:
                return len(data)

        with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cursor:
            started = time.perf_counter()
            cursor.copy_expert("COPY (SELECT * FROM readings) TO STDOUT WITH (FORMAT csv)", Sink())
            return rows / (time.perf_counter() - started)

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- the measurement ----------------------------------------------------------------------


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    data = root / "data"
    data.mkdir()
    out: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    started = time.perf_counter()
    out["tables"] = make_grid(data / "grid.duckdb", args.rows)
    out["generate_seconds"] = time.perf_counter() - started
    port = free_port()
    with BenchDatabase() as database:
        env = database.env(
            WORKER_API_SERVER=f"http://127.0.0.1:{port}",
            WORKER_API_TOKEN=database.worker_key,
            CELERY_FLOW_QUEUE=f"{database.name}-flows",
            FLOWS_DATA_ROOT=str(data),
            OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            WORKER_JOBS_DIR=str(root / "jobs"),
        )
        api = start_gunicorn(env, port)
        worker = start_worker({**env, "CELERY_TASK_QUEUE": env["CELERY_FLOW_QUEUE"]}, 1)
        try:
            bench = FlowBench(f"http://127.0.0.1:{port}", database.client_key)
            out.update(measure_service(args, bench, root, data))
        finally:
            stop_process(worker)
            stop_process(api)
    out["load_end"] = os.getloadavg()[0]
    return out


def measure_service(
    args: argparse.Namespace, bench: FlowBench, root: Path, data: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    grid = bench.store("grid", type="COLUMNAR", engine="duckdb", path="grid.duckdb")
    target = bench.store("warehouse", type="COLUMNAR", engine="duckdb", path="out/flow.duckdb")
    sources = [{"store_id": grid, "tables": [{"table": t} for t in SOURCES]}]
    graph = bench.flow_input("feeder-energy", sources, target, [flow_sql(t) for t in TRANSFORMS])
    order = graph["order"]

    # (a) and (b), interleaved so that the machine's load falls on all three alike.
    use_dbt = flows_dbt.DBT.exists()
    project = root / "dbt"
    if use_dbt:
        flows_dbt.write_project(project, root / "dbt.duckdb", data / "grid.duckdb", SOURCES,
                                TRANSFORMS, args.dbt_threads)  # fmt: skip
        out["dbt_version"] = flows_dbt.version()
    flows, runs, directs, dbts, dbt_models = [], [], [], [], []
    for attempt in range(args.repeat + 1):  # the first of each is a warm-up
        seconds = direct(data / "grid.duckdb", root / "direct.duckdb", order)
        flow_seconds, run = bench.run(graph["id"])
        dbt_seconds = flows_dbt.run(project) if use_dbt else None
        label = f"round {attempt}" if attempt else "warm-up"
        print(f"{label}: direct {seconds:.2f} s, flow {flow_seconds:.2f} s"
              + (f", dbt {dbt_seconds[0]:.2f} s" if dbt_seconds else ""), flush=True)  # fmt: skip
        if attempt:
            directs.append(seconds)
            flows.append(flow_seconds)
            runs.append(run)
            if dbt_seconds:
                dbts.append(dbt_seconds[0])
                dbt_models.append(dbt_seconds[1])
    published = fingerprint(data / "out" / "flow.duckdb")
    out["results_match"] = same(published, fingerprint(root / "direct.duckdb"))
    if use_dbt:
        out["results_match"] &= same(published, fingerprint(root / "dbt.duckdb"))
    out["direct"], out["flow"] = directs, flows
    middle = runs[flows.index(sorted(flows)[len(flows) // 2])]
    out["breakdown"] = {k: step_seconds(middle, k) for k in ("ingest", "transform", "publish")}
    out["dbt"], out["dbt_models"] = dbts, dbt_models

    # (c) cancel during a long query.
    slow = bench.flow_input(
        "cancel-me",
        [{"store_id": grid, "tables": [{"table": "readings"}]}],
        target,
        [{"name": "slow", "sql": SLOW, "persist": True}],
    )
    out["cancel"] = [cancel_once(bench, slow["id"]) for _ in range(3)]
    out["target_untouched"] = fingerprint(data / "out" / "flow.duckdb") == published

    # (d) ingest from PostgreSQL.
    pg = PgReadings(data / "grid.duckdb", root)
    try:
        store = bench.store(
            "meters-db", type="RELATIONAL", engine="postgresql", host="127.0.0.1", port=5432,
            user="postgres", database=pg.name,
        )  # fmt: skip
        count = {"name": "reading_count", "persist": True,
                 "sql": "SELECT count(*) AS n, sum(kwh) AS kwh FROM readings"}  # fmt: skip
        ingest = bench.flow_input(
            "from-postgres", [{"store_id": store, "tables": [{"table": "public.readings"}]}],
            bench.store("pg-copy", type="COLUMNAR", engine="duckdb", path="out/pg.duckdb"),
            [count],
        )  # fmt: skip
        seconds, run = bench.run(ingest["id"])
        step = next(s for s in run["steps"] if s["kind"] == "ingest")
        out["pg"] = {
            "load_seconds": pg.load_seconds,
            "rows": step["rows"],
            "ingest_seconds": step["seconds"],
            "flow_seconds": seconds,
            "copy_out_rate": pg.copy_out_rate(step["rows"]),
        }
    finally:
        pg.drop()
    return out


def report(args: argparse.Namespace, out: dict[str, Any]) -> list[str]:
    median = statistics.median
    rows = out["tables"]["readings"]
    flow, direct_s = median(out["flow"]), median(out["direct"])
    b = out["breakdown"]
    rest = flow - sum(b.values())
    runs = f"median of {args.repeat} after a warm-up"

    def spread(name: str) -> str:
        return f"{name} {min(out[name]):.2f}-{max(out[name]):.2f} s"

    lines = [
        f"data: {rows:,} readings of {out['tables']['meters']:,} meters on "
        f"{out['tables']['feeders']:,} feeders (14 days, 15 min), generated by DuckDB in "
        f"{out['generate_seconds']:.1f} s; a graph of {len(TRANSFORMS)} transforms, "
        f"{sum(t['persist'] for t in TRANSFORMS)} published; results of the flow, the direct "
        f"run and dbt {'identical' if out['results_match'] else 'DIFFERENT'}",
        f"(a) flow, POST to COMPLETED: {flow:.2f} s; the same SQL run by DuckDB directly: "
        f"{direct_s:.2f} s; ratio flow/direct {flow / direct_s:.2f} (target <= 1.2; {runs}; "
        f"{spread('flow')}, {spread('direct')}). "
        f"The flow's steps: ingest {b['ingest']:.2f} s (a snapshot of the source: its "
        f"DuckDB file copied), transforms {b['transform']:.2f} s, publish {b['publish']:.2f} s, "
        f"the rest (queue, claim, engine process start, reports) {rest:.2f} s; "
        f"transforms alone against direct: {b['transform'] / direct_s:.2f}",
    ]
    if out["dbt"]:
        dbt = median(out["dbt"])
        models = median(out["dbt_models"])
        lines.append(
            f"(b) `dbt run` ({out['dbt_version']}; tables, threads {args.dbt_threads}): "
            f"{dbt:.2f} s, of which the models' own time {models:.2f} s and dbt's start, "
            f"parse and per-model work {dbt - models:.2f} s; ratio dbt/flow {dbt / flow:.2f} "
            f"(target >= 3; {runs}; {spread('dbt')})"
        )
    else:
        lines.append(f"(b) dbt not measured: no {flows_dbt.VENV} (`{flows_dbt.INSTALL}`)")
    cancels = ", ".join(f"{c:.2f}" for c in out["cancel"])
    lines.append(
        f"(c) cancel one second into a long query on the readings, request to CANCELLED: "
        f"{cancels} s (target < 2 s); the published tables unchanged: "
        f"{'yes' if out['target_untouched'] else 'NO'}"
    )
    pg = out["pg"]
    lines.append(
        f"(d) ingest from PostgreSQL of {pg['rows']:,} readings: {pg['ingest_seconds']:.2f} s, "
        f"{pg['rows'] / pg['ingest_seconds']:,.0f} rows/s (COPY out of PostgreSQL through "
        f"psycopg2 into a CSV file, then DuckDB's CSV reader); the same COPY out alone, into "
        f"nothing: {pg['copy_out_rate']:,.0f} rows/s; the whole flow {pg['flow_seconds']:.2f} s"
    )
    return lines + why(out)


def why(out: dict[str, Any]) -> list[str]:
    """Where the time goes when (a) or (b) misses its target, from the figures measured."""
    median = statistics.median
    flow, direct_s, b = median(out["flow"]), median(out["direct"]), out["breakdown"]
    rest = flow - sum(b.values())
    lines = []
    if flow / direct_s > 1.2:
        lines.append(
            f"why (a) misses: the flow does more than the direct run. It takes a snapshot of "
            f"its sources ({b['ingest']:.2f} s: the source file copied, so it is held only "
            f"for the copy and every transform reads the same data), "
            f"publishes to the target ({b['publish']:.2f} s) and runs in an engine process of "
            f"its own behind the queue and the claim ({rest:.2f} s). DuckDB needs "
            f"{direct_s:.2f} s for the whole graph here, so these fixed costs weigh: the "
            f"target needs the flow's whole service path (queue, claim, process start, "
            f"reports, snapshot, publish) under {0.2 * direct_s:.2f} s, which a flow in its "
            f"own process behind a queue (so that a cancel can always stop it) cannot reach "
            f"at this size; they stay the same as the data grows, so the ratio falls"
        )
    if out["dbt"] and median(out["dbt"]) / flow < 3:
        dbt, models = median(out["dbt"]), median(out["dbt_models"])
        lines.append(
            f"why (b) misses: what the flow saves is dbt's start, parse and per-model work "
            f"({dbt - models:.2f} s); the engine's work on 10M readings is paid by both (dbt's "
            f"models {models:.2f} s; the flow's ingest and transforms "
            f"{b['ingest'] + b['transform']:.2f} s), which bounds the ratio at this size"
        )
    return lines


NOTES = (
    "direct: a fresh DuckDB file in the benchmark's own process, the source file attached "
    "read-only, each transform's SQL a CREATE TABLE in the flow's order; no DuckDB threads or "
    "memory setting anywhere (the defaults in the flow engine, the direct run and dbt)",
    "dbt is installed for the benchmark only, outside the Pipfile, in bench/.venv-dbt: "
    "`python3 -m pipenv run python bench/flows.py --install-dbt` creates it (or "
    f"`{flows_dbt.INSTALL}`). dbt-core 1.12 cannot be installed without GitHub: it requires "
    "dbt-core-experimental-parser, an sdist whose build downloads a wheel from GitHub "
    "releases; so dbt-core 1.11. Partial parsing on (the warm-up run parses in full), "
    "anonymous usage statistics off",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="readings (at least)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs of (a) and (b)")
    parser.add_argument("--dbt-threads", type=int, default=1, help="dbt's models at once")
    parser.add_argument("--install-dbt", action="store_true", help="create bench/.venv-dbt")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.install_dbt and not flows_dbt.DBT.exists():
        flows_dbt.install()
    if not flows_dbt.DBT.exists():
        print(f"dbt is not installed: (b) is skipped. To measure it: {flows_dbt.INSTALL}")
    root = Path(tempfile.mkdtemp(prefix="bench-flows-"))
    try:
        out = measure(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = report(args, out)
    command = "python3 -m pipenv run python bench/flows.py" + "".join(
        f" --{flag.replace('_', '-')} {value}"
        for flag, value, default in [
            ("rows", args.rows, 10_000_000),
            ("repeat", args.repeat, 3),
            ("dbt_threads", args.dbt_threads, 1),
        ]
        if value != default
    )
    lines.append(
        f"measured {time.strftime('%Y-%m-%d')} on 2 cores (load average "
        f"{out['load_start']:.1f} at the start, {out['load_end']:.1f} at the end) with "
        f"`{command} --write`"
    )
    lines += NOTES
    print("\n".join(f"- {line}" for line in lines))
    if args.write:
        replace_section("Flows", "".join(f"- {line}\n" for line in lines))


if __name__ == "__main__":
    main()
