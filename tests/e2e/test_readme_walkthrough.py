"""The README's walk-through, as a new user runs it: the service started with the README's
run command, then the walk-through's blocks pasted as written, one after the other, into a
new shell at the root of the clone. Only the port and the instance folder are the test's
own (exported in both shells, as the README says to do for other settings)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.e2e.harness import REPO, Service, free_port, http_ready, tail
from tests.e2e.procs import alive, descendants, kill_all

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(
    r"<!-- walk-through -->\n```bash\n(.*?)\n```\n<!-- /walk-through -->", README, re.S
)
RUN_COMMAND = re.search(r"<!-- run-command -->\n```bash\n(.+)\n```\n<!-- /run-command -->", README)
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


@pytest.fixture
def readme_service(tmp_path) -> Iterator[dict[str, str]]:
    """The service as the README starts it (the last step of its run command: the steps
    before it install what the test command installed already)."""
    assert RUN_COMMAND, "README has no <!-- run-command --> block"
    start = RUN_COMMAND.group(1).split(" && ")[-1]
    assert start == "python3 -m pipenv run python run.py", start
    port = free_port()
    env = fresh_shell_env(port, tmp_path / "instance")
    service = Service(
        "readme-service",
        shlex.split(start),
        {**env, "PYTHONUNBUFFERED": "1"},
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
