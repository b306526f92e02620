"""The README's walk-throughs, as a new user runs them: the service started with the README's
run command, then the walk-through's blocks pasted as written, one after the other, into a
new shell at the root of the clone. Only the port and the instance folder are the test's
own (exported in both shells, as the README says to do for other settings). The flow
walk-through has a run command of its own (a local PostgreSQL allowed) and runs after the
walk-through's first block, which sets API, AUTH and JSON."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from app.config import Settings
from tests.e2e.harness import REPO, Service, free_port, http_ready, tail
from tests.e2e.procs import alive, descendants, kill_all

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(
    r"<!-- walk-through -->\n```bash\n(.*?)\n```\n<!-- /walk-through -->", README, re.S
)
RUN_COMMAND = re.search(r"<!-- run-command -->\n```bash\n(.+)\n```\n<!-- /run-command -->", README)
FLOWS_BLOCK = re.search(
    r"<!-- flows-walk-through -->\n```bash\n(.*?)\n```\n<!-- /flows-walk-through -->", README, re.S
)
FLOWS_RUN_COMMAND = re.search(
    r"<!-- flows-run-command -->\n```bash\n(.+)\n```\n<!-- /flows-run-command -->", README
)
FLOWS_EXAMPLE = REPO / "examples" / "flows"  # the data the flow walk-through loads
SETTING = re.compile(r"[A-Z][A-Z0-9_]*=\S*")  # NAME=value before a command
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DOWNLOADS = REPO / "downloads"
HVAC_CSVS = ("test_HVAC_common_cool.csv", "test_HVAC_common_cool_energy.csv",
             "test_HVAC_common_cool_hourly.csv")  # fmt: skip
COMPARE_CSVS = ("compare.csv", "compare-peak-2000.csv")  # the workflow's join, two runs
SHAPE = (0.5, 0.5, 1.0, 1.0, 0.75, 0.75)  # examples/workflow/load_shape.glm, hour by hour


def fresh_shell_env(port: int, instance: Path) -> dict[str, str]:
    """The environment of a new shell of this user: no virtualenv active, no setting of the
    service but the two the test chooses."""
    venv_bin = str(Path(sys.prefix) / "bin")
    drop = {f.name for f in dataclasses.fields(Settings)} | {
        "VIRTUAL_ENV", "PIPENV_ACTIVE", "PYTHONHOME", "PYTHONPATH",
    }  # fmt: skip
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env.update(PORT=str(port), INSTANCE_DIR=str(instance))
    return env


@contextlib.contextmanager
def service_started_as(command: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The service started with the last step of a README run command (the steps before it
    install what the test command installed already), with the settings written in front
    of it; yields the environment of the user's other shell."""
    words = shlex.split(command.split(" && ")[-1])
    settings = dict(w.split("=", 1) for w in itertools.takewhile(SETTING.fullmatch, words))
    start = words[len(settings) :]
    assert start == shlex.split("python3 -m pipenv run python run.py"), start
    port = free_port()
    env = fresh_shell_env(port, tmp_path / "instance")
    service = Service(
        "readme-service",
        start,
        {**env, **settings, "PYTHONUNBUFFERED": "1"},
        tmp_path,
        cwd=REPO,
        ready=http_ready(f"http://127.0.0.1:{port}/healthcheck"),
        ready_timeout=120,
    )
    service.start()
    try:
        yield {**env, "SERVICE_LOG": str(service.log_path)}
    finally:
        children = descendants(service.pid)
        service.stop(timeout=15)
        kill_all(alive(children))


@pytest.fixture
def readme_service(tmp_path) -> Iterator[dict[str, str]]:
    """The service as the README starts it."""
    assert RUN_COMMAND, "README has no <!-- run-command --> block"
    with service_started_as(RUN_COMMAND.group(1), tmp_path) as env:
        yield env


@pytest.fixture
def downloads() -> Iterator[list[Path]]:
    """The files the walk-through downloads; those it created are removed afterwards."""
    files = [
        DOWNLOADS / "IEEE_13_NR_voltage.csv",
        *(DOWNLOADS / "models" / n for n in HVAC_CSVS),
        *(DOWNLOADS / n for n in COMPARE_CSVS),
    ]
    existed = {path for path in files if path.exists()}
    yield files
    for path in set(files) - existed:
        path.unlink(missing_ok=True)
    for folder in (DOWNLOADS / "models", DOWNLOADS):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@pytest.mark.timeout(400)
def test_the_walk_through_runs_as_written(readme_service, downloads):
    assert len(BLOCKS) == 3, "the walk-through, its residential block, the workflow's"
    env = dict(readme_service)
    service_log = Path(env.pop("SERVICE_LOG"))
    script = "\n".join(f"echo '@@ block {i}'\n{block}" for i, block in enumerate(BLOCKS))
    started = time.time()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],  # any failing command fails the test
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = (
        f"exit code {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n"
        f"--- service log\n{tail(service_log, 60)}"
    )
    assert done.returncode == 0, report
    ieee13, hvac, workflow = re.split(r"@@ block \d+\n", done.stdout)[1:]
    # 3-5: uploaded, and the state read once the run has ended.
    assert '"name": "test_IEEE_13_NR.glm"' in ieee13, report
    assert re.search(r'"state": "COMPLETED",\s+"states": \[\s+"READY",\s+"RUNNING",\s+'
                     r'"COMPLETED"\s+\]', ieee13), report  # fmt: skip
    # 7: the CSV itself was downloaded, not an error body.
    csv = downloads[0].read_text()
    assert downloads[0].stat().st_mtime >= started - 1, "not downloaded by this run"
    assert csv.splitlines()[1].startswith("node_name,voltA_mag"), csv[:300]
    assert "\n".join(csv.splitlines()[:3]) in ieee13, report
    # 8: the cancel of a run of its own, then the 409's message for the ended run.
    *_, cancelled, refused = ieee13.strip().splitlines()
    assert cancelled in ("CANCELLED", "CANCELLING"), report
    assert refused.startswith("Run already ended COMPLETED"), report
    # The residential model's three outputs, listed and downloaded.
    assert '"state": "COMPLETED"' in hvac and '"error": null' in hvac, report
    assert hvac.strip().splitlines()[-3:] == sorted(HVAC_CSVS), report
    for path in downloads[1:4]:
        rows = path.read_text().splitlines()
        assert path.stat().st_mtime >= started - 1 and len(rows) > 20, path
    assert len((DOWNLOADS / "models" / HVAC_CSVS[0]).read_text().splitlines()) > 80_000
    check_workflow_block(workflow, downloads[4:], started, report)
    # Nothing the user reads shows the server's folders.
    assert sys.prefix not in done.stdout and env["INSTANCE_DIR"] not in done.stdout, report


def check_workflow_block(out: str, csvs: list[Path], started: float, report: str) -> None:
    """The workflow walk-through: three pipelines, a run followed to its end, the join's
    CSV downloaded; a failed run, then its retry from failure, downloaded too."""
    lines = out.strip().splitlines()
    assert lines[:3] == ["load_shape.glm", "scenario.glm", "compare.glm"], report
    ends = [line for line in lines if re.match(r"(COMPLETED|FAILED) 100%: ", line)]
    done = "COMPLETED 100%: shape COMPLETED, scenario COMPLETED, compare COMPLETED"
    failed = "FAILED 100%: shape COMPLETED, scenario FAILED, compare SKIPPED"
    assert ends == [done, failed, done], report
    # Each node's instances: one shape, the scenario once per value, one compare.
    nodes = [json.loads(line) for line in lines if line.startswith('{"name"')]
    assert [(n["name"], [i["sweep"] for i in n["instances"]]) for n in nodes] == [
        ("shape", [{}]), ("scenario", [{"LOAD_SCALE": "0.5"}, {"LOAD_SCALE": "2"}]),
        ("compare", [{}]),
    ], report  # fmt: skip
    assert "NODE_FAILED" in lines, report
    assert any(line.startswith("Node(s) did not complete: scenario: ") for line in lines), report
    retried = json.loads(next(line for line in lines if line.startswith('{"retry_of"')))
    assert [(n["name"], n["state"], n["reused"]) for n in retried["nodes"]] == [
        ("shape", "COMPLETED", [True]), ("scenario", "COMPLETED", [False, False]),
        ("compare", "COMPLETED", [False]),
    ], report  # fmt: skip
    # The join's CSV follows the upstream: the shape at PEAK 1000, then 2000, times 0.5 and 2.
    for path, peak in zip(csvs, (1000, 2000), strict=True):
        assert path.stat().st_mtime >= started - 1, f"{path} not downloaded by this run"
        rows = [r.split(",") for r in path.read_text().splitlines() if not r.startswith("#")]
        assert [[float(v) for v in row[1:]] for row in rows] == [
            [peak * s * 0.5, peak * s * 2] for s in SHAPE
        ], path.read_text()
        assert "\n".join(",".join(row) for row in rows) in out, report


@pytest.fixture
def readme_flows_service(tmp_path) -> Iterator[dict[str, str]]:
    """The service as the flow walk-through starts it; the database it makes is dropped
    afterwards."""
    assert FLOWS_RUN_COMMAND, "README has no <!-- flows-run-command --> block"
    try:
        with service_started_as(FLOWS_RUN_COMMAND.group(1), tmp_path) as env:
            yield env
    finally:
        with contextlib.closing(psycopg2.connect(PG_ADMIN)) as connection:
            connection.autocommit = True
            connection.cursor().execute("DROP DATABASE IF EXISTS metering WITH (FORCE)")


def expected_priced() -> list[tuple[str, int, float, float, float]]:
    """The published ``priced`` table, from the walk-through's data files in plain Python:
    per customer class, its meters, their energy, the class's price and the amount."""
    with open(FLOWS_EXAMPLE / "meters.csv", newline="") as stream:
        meters = list(csv.DictReader(stream))
    prices: dict[str, float] = {}
    for path in sorted((FLOWS_EXAMPLE / "tariffs").glob("*.csv")):
        with open(path, newline="") as stream:
            prices |= {
                r["customer_class"]: float(r["price_per_kwh"]) for r in csv.DictReader(stream)
            }
    energy: dict[str, list[float]] = defaultdict(list)
    for meter in meters:
        energy[meter["customer_class"]].append(float(meter["kwh"]))
    return [
        (klass, len(kwh), sum(kwh), prices[klass], round(sum(kwh) * prices[klass], 2))
        for klass, kwh in sorted(energy.items())
    ]


@pytest.mark.timeout(400)
def test_the_flow_walk_through_runs_as_written(readme_flows_service, downloads):
    assert FLOWS_BLOCK, "README has no <!-- flows-walk-through --> block"
    env = dict(readme_flows_service)
    service_log = Path(env.pop("SERVICE_LOG"))
    script = f"{BLOCKS[0]}\necho '@@ flows'\n{FLOWS_BLOCK.group(1)}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],  # any failing command fails the test
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = (
        f"exit code {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n"
        f"--- service log\n{tail(service_log, 60)}"
    )
    assert done.returncode == 0, report
    lines = done.stdout.split("@@ flows\n", 1)[1].strip().splitlines()
    # 2: the source store reaches its database. 3: the mistake, with its line and column.
    assert lines[0] == '["public.meters"]', report
    assert lines[1] == (
        "transform by_class: Table meter is neither a source table nor a transform "
        "(known: by_class, meters, priced, tariffs) (line 2, column 6)"
    ), report
    # 5: the run, its steps with their rows, a log line per step, the manifest.
    assert json.loads(lines[2]) == {"state": "COMPLETED", "progress": 100, "error": None}, report
    priced = expected_priced()
    steps = [
        ("ingest meters", sum(n for _, n, *_ in priced)), ("ingest tariffs", len(priced)),
        ("transform by_class", len(priced)), ("transform priced", len(priced)),
        ("check unique priced.customer_class", 0), ("check row_count priced", 0),
        ("publish", len(priced)),
    ]  # fmt: skip
    reported = [json.loads(line) for line in lines[3 : 3 + len(steps)]]
    assert [(s["name"], s["state"], s["rows"]) for s in reported] == [
        (name, "COMPLETED", rows) for name, rows in steps
    ], report
    logged = lines[3 + len(steps) : 3 + 2 * len(steps)]
    unit = {True: "offending rows", False: "rows"}
    for line, (name, rows) in zip(logged, steps, strict=True):
        pattern = rf"{re.escape(name)}: {rows} {unit[name.startswith('check')]} in \d+\.\d{{3}} s"
        assert re.fullmatch(pattern, line), report
    manifest = json.loads(lines[3 + 2 * len(steps)])
    assert manifest == {"result": "COMPLETED", "published": ["priced"],
                        "steps": ["COMPLETED"] * len(steps)}, report  # fmt: skip
    # 6: the other run was running its transform when cancelled, and ended CANCELLED.
    cancel = lines[4 + 2 * len(steps) :]
    assert cancel[:2] == ["CANCELLING", "CANCELLED: Cancelled while running"], report
    # 7: the published table is the first run's (the cancelled one published nothing),
    # its values those computed from the data files.
    header, *rows = cancel[2:]
    assert header.split() == ["customer_class", "meters", "kwh", "price_per_kwh", "amount"]
    published = [row.split() for row in rows]
    assert [(c, int(n), float(k), float(p), float(a)) for c, n, k, p, a in published] == [
        pytest.approx(row) for row in priced
    ], report
    assert sys.prefix not in done.stdout and env["INSTANCE_DIR"] not in done.stdout, report
