"""The flow engine as a real process on real sources: PostgreSQL, MariaDB, SQLite and CSV
in, DuckDB and PostgreSQL out; results checked against values computed in Python; failed
checks, SQL errors and cancels leave the target exactly as it was."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.flows import data as flow_data
from tests.flows.conftest import EngineRun, flow_spec, standard_sources

SLOW = "SELECT sum(a.range * b.range) AS s FROM range(3000000) a CROSS JOIN range(3000000) b"


def _duck_rows(path: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(query).fetchall()


def _check_results(rows_of: Any, expected: dict[str, Any]) -> None:
    daily = {
        (f, str(d)): (k, m)
        for f, d, k, m in rows_of("SELECT feeder_id, day, kwh, meters FROM feeder_daily")
    }
    assert daily.keys() == expected["feeder_daily"].keys()
    for key, (kwh, meters) in expected["feeder_daily"].items():
        assert daily[key][0] == pytest.approx(kwh, rel=1e-9)
        assert daily[key][1] == meters
    loading = {
        f: (p, lo) for f, p, lo in rows_of("SELECT feeder_id, peak_kw, loading FROM feeder_loading")
    }
    assert loading.keys() == expected["feeder_loading"].keys()
    for feeder, (peak, ratio) in expected["feeder_loading"].items():
        assert loading[feeder][0] == pytest.approx(peak, rel=1e-9)
        assert loading[feeder][1] == pytest.approx(ratio, rel=1e-9)
    billing = dict(rows_of("SELECT meter_id, amount FROM billing"))
    assert billing.keys() == expected["billing"].keys()
    for meter, amount in expected["billing"].items():
        assert billing[meter] == pytest.approx(amount, rel=1e-9)


def test_flow_to_duckdb_matches_python(tmp_path, pg_source, maria_source, files_root, dataset):
    target = tmp_path / "out" / "warehouse.duckdb"
    spec = flow_spec(
        standard_sources(pg_source, maria_source, files_root),
        {"engine": "duckdb", "path": str(target)},
        flow_data.TRANSFORMS,
        flow_data.CHECKS,
    )
    run = EngineRun(spec, tmp_path / "job")
    result = run.finish()
    assert result["state"] == "COMPLETED", (result, run.lines)
    _check_results(lambda q: _duck_rows(target, q), flow_data.expected(dataset))
    # Only persisted transforms are published; every step ran, with rows and seconds.
    tables = {r[0] for r in _duck_rows(target, "SELECT table_name FROM duckdb_tables()")}
    assert tables == {"feeder_daily", "feeder_loading", "billing"}
    steps = {s["name"]: s for s in run.steps}
    assert steps["ingest readings"]["rows"] == len(dataset["readings"])
    assert steps["ingest meters"]["rows"] == 30 and steps["ingest feeders"]["rows"] == 3
    assert steps["ingest tariffs"]["rows"] == 3
    assert all(s["state"] == "COMPLETED" and s["seconds"] is not None for s in run.steps)
    assert [s["name"] for s in run.steps if s["kind"] == "transform"].index(
        "transform meter_daily"
    ) < [s["name"] for s in run.steps if s["kind"] == "transform"].index("transform billing")
    # One log line per step with its rows and seconds; a manifest in the job folder.
    assert any(line.startswith("ingest readings: 5,760 rows in ") for line in run.lines)
    assert len([line for line in run.lines if " in " in line and line.endswith(" s")]) == len(
        run.steps
    )
    assert (tmp_path / "job" / "manifest.json").exists()
    # The connection info was read and deleted at once.
    assert not (tmp_path / "job" / "flow-spec.json").exists()


def test_flow_to_postgres_matches_python_and_replaces(
    tmp_path, pg_source, maria_source, files_root, dataset, pg_target
):
    spec = flow_spec(
        standard_sources(pg_source, maria_source, files_root),
        pg_target.store(),
        flow_data.TRANSFORMS,
        flow_data.CHECKS,
    )
    for attempt in range(2):  # a re-run replaces the results the same way
        result = EngineRun(spec, tmp_path / f"job{attempt}", f"run-{attempt}").finish()
        assert result["state"] == "COMPLETED", result

    def rows_of(query: str) -> list[tuple]:
        with contextlib.closing(pg_target.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()

    _check_results(rows_of, flow_data.expected(dataset))
    leftovers = rows_of("SELECT tablename FROM pg_tables WHERE tablename LIKE '_flow_stage%'")
    assert leftovers == []


def _target_snapshot(path: Path) -> list[tuple]:
    return _duck_rows(path, "SELECT * FROM billing ORDER BY meter_id")


@pytest.fixture
def published(tmp_path, pg_source, maria_source, files_root) -> tuple[Path, list[tuple], list]:
    """A DuckDB target holding a first run's results, and the sources."""
    target = tmp_path / "warehouse.duckdb"
    sources = standard_sources(pg_source, maria_source, files_root)
    spec = flow_spec(sources, {"engine": "duckdb", "path": str(target)}, flow_data.TRANSFORMS, [])
    assert EngineRun(spec, tmp_path / "first").finish()["state"] == "COMPLETED"
    return target, _target_snapshot(target), sources


def _changed_billing(extra: str) -> list[dict[str, Any]]:
    transforms = [dict(t) for t in flow_data.TRANSFORMS]
    transforms[-1] = {**transforms[-1], "sql": "SELECT meter_id, 0.0 AS amount FROM meter_daily"}
    return transforms + ([{"name": "extra", "sql": extra, "persist": True}] if extra else [])


def test_failed_check_leaves_target_untouched(tmp_path, published):
    target, before, sources = published
    checks = [{"type": "accepted_values", "table": "meter_info", "column": "customer_class",
               "values": ["residential"]}]  # fmt: skip
    spec = flow_spec(
        sources, {"engine": "duckdb", "path": str(target)}, _changed_billing(""), checks
    )
    run = EngineRun(spec, tmp_path / "job")
    result = run.finish()
    assert result["state"] == "FAILED"
    assert result["error"]["type"] == "CHECK_FAILED"
    assert "meter_info.customer_class has 20 value(s) outside" in result["error"]["message"]
    assert {s["name"]: s["state"] for s in run.steps}["publish"] == "SKIPPED"
    assert _target_snapshot(target) == before


def test_sql_error_names_transform_line_and_column(tmp_path, published):
    target, before, sources = published
    transforms = _changed_billing("SELECT meter_id,\n       no_such_column FROM meter_daily")
    spec = flow_spec(sources, {"engine": "duckdb", "path": str(target)}, transforms, [])
    result = EngineRun(spec, tmp_path / "job").finish()
    assert result["state"] == "FAILED"
    error = result["error"]
    assert error["type"] == "SQL_ERROR"
    assert error["details"]["transform"] == "extra"
    assert (error["details"]["line"], error["details"]["column"]) == (2, 8)
    assert "no_such_column" in error["message"]
    assert _target_snapshot(target) == before


def test_engine_refuses_files_at_run_time(tmp_path, published):
    """What slips past the parser is stopped by the locked engine configuration."""
    target, before, sources = published
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT current_setting('enable_external_access') AS x, * FROM duckdb_settings()",
    ):
        transforms = [{"name": "leak", "sql": sql, "persist": True}]
        spec = {**flow_spec(sources, {"engine": "duckdb", "path": str(target)},
                            [{"name": "ok", "sql": "SELECT 1 AS x"}], []),
                "transforms": transforms, "order": ["leak"]}  # fmt: skip
        result = EngineRun(spec, tmp_path / f"job-{abs(hash(sql))}").finish()
        if "duckdb_settings" in sql:
            continue  # reading settings is harmless; changing them is what is locked
        assert result["state"] == "FAILED", sql
        assert result["error"]["type"] == "SQL_ERROR"
        assert "root:" not in str(result)  # nothing of the file came back
    assert _target_snapshot(target) == before


def _cancel_when_running(run: EngineRun, step: str) -> float:
    def running(m: dict) -> bool:
        return m["event"] == "steps" and any(
            s["name"] == step and s["state"] == "RUNNING" for s in m["steps"]
        )

    if not any(running(m) for m in run.markers):
        run.read_until(running)
    started = time.monotonic()
    run.interrupt()
    result = run.finish(timeout=30)
    assert result["state"] == "CANCELLED", (result, run.lines)
    return time.monotonic() - started


def test_cancel_mid_duckdb_query_leaves_target_untouched(tmp_path, published):
    target, before, sources = published
    spec = flow_spec(sources, {"engine": "duckdb", "path": str(target)}, _changed_billing(SLOW), [])
    run = EngineRun(spec, tmp_path / "job")
    # Within a long query, DuckDB's own progress is reported.
    run.read_until(lambda m: m["event"] == "status" and "transform extra: " in (m["text"] or ""))
    assert _cancel_when_running(run, "transform extra") < 5
    assert {s["name"]: s["state"] for s in run.steps}["transform extra"] == "CANCELLED"
    assert _target_snapshot(target) == before


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_cancel_mid_server_query_stops_it_on_the_server(
    tmp_path, published, pg_source, maria_source, server
):
    target, before, sources = published
    source = pg_source if server == "postgresql" else maria_source
    slow = {"store": source.store(), "tables": [{"table": "slow"}]}
    spec = flow_spec([slow, *sources], {"engine": "duckdb", "path": str(target)},
                     _changed_billing("SELECT * FROM slow"), [])  # fmt: skip
    run = EngineRun(spec, tmp_path / "job")
    run.read_until(
        lambda m: (
            m["event"] == "steps"
            and any(s["name"] == "ingest slow" and s["state"] == "RUNNING" for s in m["steps"])
        )
    )
    deadline = time.monotonic() + 10
    while not source.running_queries("slow") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert source.running_queries("slow"), "the slow query never started on the server"
    run.interrupt()
    result = run.finish(timeout=30)
    assert result["state"] == "CANCELLED"
    assert source.running_queries("slow") == []  # cancelled on the server, not abandoned
    assert _target_snapshot(target) == before


def test_flow_to_csv_folder_switches_current_atomically(tmp_path, files_root):
    folder = tmp_path / "published"
    sources = [{"store": {"engine": "csv", "path": str(files_root / "tariffs")},
                "files": [{"name": "tariffs", "pattern": "*.csv"}]}]  # fmt: skip
    cheap = "SELECT * FROM tariffs WHERE price_per_kwh < 0.2 ORDER BY 1"
    transforms = [{"name": "cheap", "persist": True, "sql": cheap}]
    spec = flow_spec(sources, {"engine": "csv", "path": str(folder)}, transforms, [])
    assert EngineRun(spec, tmp_path / "j1", "run-a").finish()["state"] == "COMPLETED"
    assert (folder / "current").resolve() == (folder / "run-a").resolve()
    text = (folder / "current" / "cheap.csv").read_text().splitlines()
    assert text == ["customer_class,price_per_kwh", "commercial,0.17", "industrial,0.12"]
    assert '"run_id": "run-a"' in (folder / "current" / "_manifest.json").read_text()
    # A failed run leaves ``current`` as it was; a good one switches it and removes the old.
    bad = flow_spec(sources, {"engine": "csv", "path": str(folder)}, transforms,
                    [{"type": "row_count", "table": "cheap", "min": 5}])  # fmt: skip
    assert EngineRun(bad, tmp_path / "j2", "run-b").finish()["state"] == "FAILED"
    assert (folder / "current").resolve() == (folder / "run-a").resolve()
    assert EngineRun(spec, tmp_path / "j3", "run-c").finish()["state"] == "COMPLETED"
    assert (folder / "current").resolve() == (folder / "run-c").resolve()
    assert sorted(p.name for p in folder.iterdir()) == ["current", "run-c"]


def test_source_errors_name_the_table_and_never_the_password(tmp_path, pg_source):
    store = {**pg_source.store(), "user": "nobody_at_all", "password": "pw-never-shown-91"}
    spec = flow_spec([{"store": store, "tables": [{"table": "meters"}]}],
                     {"engine": "duckdb", "path": str(tmp_path / "t.duckdb")},
                     [{"name": "x", "sql": "SELECT * FROM meters"}], [])  # fmt: skip
    run = EngineRun(spec, tmp_path / "job")
    result = run.finish()
    assert result["state"] == "FAILED" and result["error"]["type"] == "SOURCE_ERROR"
    assert "meters" in result["error"]["message"]
    assert "nobody_at_all" in result["error"]["message"]
    everything = (
        str(run.markers) + "\n".join(run.lines) + (tmp_path / "job/manifest.json").read_text()
    )
    assert "pw-never-shown-91" not in everything


def test_duckdb_file_as_a_source(tmp_path, published):
    """A COLUMNAR store is read by attaching it read-only before the engine is locked."""
    target, before, _sources = published
    source = {"store": {"engine": "duckdb", "path": str(target)},
              "tables": [{"table": "billing", "name": "last_billing"}]}  # fmt: skip
    transforms = [{"name": "total", "persist": True,
                   "sql": "SELECT sum(amount) AS amount FROM last_billing"}]  # fmt: skip
    out = tmp_path / "second.duckdb"
    run = EngineRun(flow_spec([source], {"engine": "duckdb", "path": str(out)}, transforms, []),
                    tmp_path / "job")  # fmt: skip
    assert run.finish()["state"] == "COMPLETED", run.lines
    total = _duck_rows(out, "SELECT amount FROM total")[0][0]
    assert total == pytest.approx(sum(amount for _, amount in before))


def test_a_duckdb_source_is_read_whole_with_its_wal(tmp_path):
    """A DuckDB source is snapshotted by copying its file: rows still in its WAL (a writer
    that never checkpointed) are in the snapshot, and the run reads only what it names."""
    source = tmp_path / "meters.duckdb"
    with duckdb.connect(str(source)) as writer:
        writer.execute("SET checkpoint_threshold = '1TB'")
        writer.execute("PRAGMA disable_checkpoint_on_shutdown")
        writer.execute("CREATE TABLE readings AS SELECT range AS kwh FROM range(1000)")
        writer.execute("INSERT INTO readings VALUES (5000)")
        writer.execute("CREATE TABLE other AS SELECT 1 AS x")
    assert Path(f"{source}.wal").exists()
    spec = flow_spec(
        [{"store": {"engine": "duckdb", "path": str(source)},
          "tables": [{"table": "readings", "name": "readings"}]}],
        {"engine": "duckdb", "path": str(tmp_path / "out.duckdb")},
        [{"name": "total", "persist": True,
          "sql": "SELECT count(*) AS n, sum(kwh) AS kwh FROM readings"}],
        [],
    )  # fmt: skip
    run = EngineRun(spec, tmp_path / "job")
    assert run.finish()["state"] == "COMPLETED", run.lines
    assert _duck_rows(tmp_path / "out.duckdb", "SELECT n, kwh FROM total") == [
        (1001, sum(range(1000)) + 5000)
    ]
    assert any("ingest readings: 1,001 rows" in line for line in run.lines), run.lines
    copies = list((tmp_path / "job").rglob("_flow_snapshot_*.duckdb"))
    assert len(copies) == 1  # the tables the flow did not name are not in its copy
    assert _duck_rows(copies[0], "SELECT table_name FROM duckdb_tables()") == [("readings",)]
    with duckdb.connect(str(source)) as writer:  # not held once the run has ended
        writer.execute("INSERT INTO readings VALUES (1)")


def test_without_room_for_a_copy_the_tables_are_copied_row_by_row(tmp_path, monkeypatch):
    """The engine in-process with the disk reported full: no file copy, the same result."""
    from app.worker import flow_engine

    source = tmp_path / "meters.duckdb"
    with duckdb.connect(str(source)) as writer:
        writer.execute("CREATE TABLE readings AS SELECT range AS kwh FROM range(1000)")
    spec = flow_spec(
        [{"store": {"engine": "duckdb", "path": str(source)},
          "tables": [{"table": "readings", "name": "readings"}]}],
        {"engine": "duckdb", "path": str(tmp_path / "out.duckdb")},
        [{"name": "total", "persist": True, "sql": "SELECT sum(kwh) AS kwh FROM readings"}],
        [],
    )  # fmt: skip
    full = flow_engine.shutil.disk_usage(tmp_path)._replace(free=0)
    monkeypatch.setattr(flow_engine.shutil, "disk_usage", lambda path: full)
    (tmp_path / "job").mkdir()
    engine = flow_engine.FlowEngine(spec, tmp_path / "job", "run-1")
    engine.run()
    assert engine.result["state"] == "COMPLETED", engine.result
    assert not list((tmp_path / "job").rglob("_flow_snapshot_*"))
    assert _duck_rows(tmp_path / "out.duckdb", "SELECT kwh FROM total") == [(sum(range(1000)),)]
