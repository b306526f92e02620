"""Workflows through the whole service (gunicorn API, PostgreSQL, Redis, Celery worker
processes, S3 over HTTP) with real GridLAB-D simulations of the README's example models
(examples/workflow): an upstream recorder's CSV replayed downstream by a player, a sweep
whose instances fan in to a join, a failure and its retry, a cancel mid-DAG. Every
assertion is on what a client reads: the workflow run, its node runs, and the CSVs."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LONG, residential_files
from tests.e2e.harness import API, REPO, TERMINAL, Client, artifact, history, sha256_of

EXAMPLES = REPO / "examples" / "workflow"
LOAD_SHAPE, SCENARIO, COMPARE = (EXAMPLES / n for n in ("load_shape.glm", "scenario.glm",
                                                          "compare.glm"))  # fmt: skip
SHAPE = (0.5, 0.5, 1.0, 1.0, 0.75, 0.75)  # load_shape.glm's schedule, hour by hour


class Workflows:
    """Workflow calls of a test; remembers its runs so the teardown can stop them."""

    def __init__(self, client: Client):
        self.client = client
        self.runs: list[tuple[str, str]] = []

    def create(self, nodes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        response = self.client.post(f"{API}/workflows", json={"name": "e2e", "nodes": nodes,
                                                               **fields})  # fmt: skip
        assert response.status_code == 201, f"create workflow: {response.text}"
        return response.json()

    def start(self, workflow_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.post(f"{API}/workflows/{workflow_id}/runs", json=body or {})
        assert response.status_code == 201, f"start workflow run: {response.text}"
        run = response.json()
        self.runs.append((workflow_id, run["id"]))
        return run

    def retry(self, workflow_id: str, run_id: str) -> dict[str, Any]:
        response = self.client.post(f"{API}/workflows/{workflow_id}/runs/{run_id}/retry")
        assert response.status_code == 201, f"retry: {response.text}"
        run = response.json()
        self.runs.append((workflow_id, run["id"]))
        return run

    def get(self, workflow_id: str, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"{API}/workflows/{workflow_id}/runs/{run_id}")
        assert response.status_code == 200, f"get workflow run: {response.text}"
        return response.json()

    def log(self, workflow_id: str, run_id: str) -> list[str]:
        response = self.client.get(
            f"{API}/workflows/{workflow_id}/runs/{run_id}/logs", params={"limit": 1000}
        )
        assert response.status_code == 200, response.text
        return [line["line"] for line in response.json()["lines"]]

    def wait(self, workflow_id: str, run_id: str, state: str, timeout: float) -> dict[str, Any]:
        """Poll until the run is in ``state``; fail at once if it ends otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(workflow_id, run_id)
            if run["state"] == state:
                return run
            if run["state"] in TERMINAL or time.monotonic() > deadline:
                raise AssertionError(
                    f"workflow run {run_id} is {run['state']}, awaited {state} within "
                    f"{timeout:.0f} s:\n{describe(run)}\n{self.client._diag()}"
                )
            time.sleep(0.2)

    def settle(self) -> None:
        """Cancel what a test left unfinished and wait until every node has stopped."""
        for workflow_id, run_id in self.runs:
            if self.get(workflow_id, run_id)["state"] in TERMINAL:
                continue
            self.client.post(f"{API}/workflows/{workflow_id}/runs/{run_id}/cancel")
            self.wait(workflow_id, run_id, "CANCELLED", 30)


def describe(run: dict[str, Any]) -> str:
    lines = [f"state={run['state']} error={run.get('error')}"]
    for node in run.get("nodes", []):
        lines.append(f"  {node['name']}: {node['state']}")
        lines += [
            f"    {item['sweep']} {item['state']} run={item['run_id']} reason={item['reason']}"
            for item in node["instances"]
        ]
    return "\n".join(lines)


@pytest.fixture
def workflows(client: Client) -> Iterator[Workflows]:
    calls = Workflows(client)
    yield calls
    calls.settle()


def nodes_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in run["nodes"]}


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def download(client: Client, pipeline_run: dict[str, Any], name: str) -> bytes:
    """An artifact as a client downloads it: through the API, then the presigned URL."""
    item = artifact(pipeline_run, name)
    response = client.download(item)
    assert response.status_code == 302, response.text
    data = requests.get(response.headers["Location"], timeout=30).content
    assert sha256_of(data) == item["sha256"], name
    return data


def columns(data: bytes) -> list[list[float]]:
    """A recorder CSV's value columns (its ``#`` header and timestamps left out)."""
    rows = [r for r in csv.reader(data.decode().splitlines()) if r and not r[0].startswith("#")]
    return [[float(value) for value in row[1:]] for row in rows]


def node_run(client: Client, node: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return client.get_run(node["pipeline_id"], node["instances"][index]["run_id"])


def pipeline_run_count(client: Client, pipeline_id: str) -> int:
    response = client.get(f"{API}/pipelines/{pipeline_id}/runs", params={"limit": 500})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def example_pipelines(client: Client, scenario: bytes | None = None) -> dict[str, str]:
    """The three example pipelines; ``scenario`` replaces the scenario model's bytes."""
    made = {}
    for key, model in (("shape", LOAD_SHAPE), ("scenario", SCENARIO), ("compare", COMPARE)):
        source = scenario if key == "scenario" and scenario is not None else model
        made[key] = client.pipeline_with_files(model.name, [(model.name, source)])["id"]
    return made


def hand_off(node: str, artifact_name: str, as_name: str) -> list[dict[str, Any]]:
    return [{"name": as_name, "from": {"node": node, "artifact": artifact_name}}]


@pytest.mark.timeout(120)
def test_sweep_and_hand_off_flow_through_a_three_node_dag(client, workflows):
    """shape -> scenario (swept over LOAD_SCALE) -> compare (the join): the join runs once,
    after every instance, and its CSV holds the upstream shape times each sweep value."""
    p = example_pipelines(client)
    workflow = workflows.create([
        {"name": "shape", "pipeline_id": p["shape"], "parameters": {"PEAK": "1000"}},
        {"name": "scenario", "pipeline_id": p["scenario"], "sweep": {"LOAD_SCALE": ["0.5", "2"]},
         "inputs": hand_off("shape", "load.csv", "input.csv")},
        {"name": "compare", "pipeline_id": p["compare"],
         "inputs": hand_off("scenario", "scaled.csv", "scaled.csv")},
    ])  # fmt: skip
    # The run's parameters override the node's: the whole chain must follow PEAK=1200.
    run = workflows.start(workflow["id"], {"parameters": {"shape": {"PEAK": "1200"}}})
    run = workflows.wait(workflow["id"], run["id"], "COMPLETED", 60)

    assert history(run) == ["READY", "RUNNING", "COMPLETED"], describe(run)
    assert run["error"] is None and run["progress"]["percent"] == 100, describe(run)
    nodes = nodes_of(run)
    assert [n["state"] for n in nodes.values()] == ["COMPLETED"] * 3, describe(run)
    instances = nodes["scenario"]["instances"]
    assert [i["sweep"] for i in instances] == [{"LOAD_SCALE": "0.5"}, {"LOAD_SCALE": "2"}]
    assert len(set(nodes["scenario"]["run_ids"])) == 2
    # The join: one instance, one pipeline run, started after every instance had ended.
    assert len(nodes["compare"]["instances"]) == 1 and len(nodes["compare"]["run_ids"]) == 1
    assert pipeline_run_count(client, p["compare"]) == 1
    join_start = when(nodes["compare"]["instances"][0]["started_at"])
    assert all(join_start >= when(i["finished_at"]) for i in instances), describe(run)
    started = [line for line in workflows.log(workflow["id"], run["id"]) if "started" in line]
    assert sum(line.startswith("node compare started") for line in started) == 1, started

    # The data: the upstream recorder's CSV, replayed downstream by a player, scaled by
    # each instance's LOAD_SCALE and joined side by side.
    shape = columns(download(client, node_run(client, nodes["shape"]), "load.csv"))
    assert shape == [[1200 * s] for s in SHAPE], shape
    for index, scale in enumerate((0.5, 2.0)):
        scenario_run = node_run(client, nodes["scenario"], index)
        assert scenario_run["parameters"]["LOAD_SCALE"] == instances[index]["sweep"]["LOAD_SCALE"]
        scaled = columns(download(client, scenario_run, "scaled.csv"))
        assert scaled == [[1200 * s * scale] for s in SHAPE], (scale, scaled)
    compare = download(client, node_run(client, nodes["compare"]), "compare.csv")
    header = [line for line in compare.decode().splitlines() if line.startswith("# timestamp")]
    assert header == ["# timestamp,low:base_power_A,high:base_power_A"], compare[:400]
    assert columns(compare) == [[600 * s, 2400 * s] for s in SHAPE], compare.decode()


@pytest.mark.timeout(120)
def test_a_failed_node_skips_its_dependants_and_retry_from_failure_completes(client, workflows):
    """A scenario model with a mistake fails; what depends on it is SKIPPED and the run
    FAILED/NODE_FAILED. With the model fixed, a retry keeps the completed node's run and
    artifact and runs the rest."""
    broken = SCENARIO.read_bytes().replace(b"base_case.base_power_A", b"base_case.base_power")
    p = example_pipelines(client, scenario=broken)
    workflow = workflows.create([
        {"name": "shape", "pipeline_id": p["shape"]},
        {"name": "scenario", "pipeline_id": p["scenario"], "parameters": {"LOAD_SCALE": "3"},
         "inputs": hand_off("shape", "load.csv", "input.csv")},
        # The scenario model again, on the scenario's output: 3 x 2 = 6 times the shape.
        {"name": "again", "pipeline_id": p["scenario"], "parameters": {"LOAD_SCALE": "2"},
         "inputs": hand_off("scenario", "scaled.csv", "input.csv")},
    ])  # fmt: skip
    first = workflows.start(workflow["id"])
    first = workflows.wait(workflow["id"], first["id"], "FAILED", 60)

    nodes = nodes_of(first)
    assert nodes["shape"]["state"] == "COMPLETED", describe(first)
    failed = node_run(client, nodes["scenario"])
    assert failed["state"] == "FAILED" and failed["error"]["type"] == "MODEL_ERROR", failed
    assert "base_power" in failed["error"]["message"], failed["error"]
    assert nodes["again"]["state"] == "SKIPPED" and nodes["again"]["run_ids"] == []
    assert nodes["again"]["instances"][0]["reason"] == "upstream scenario did not complete"
    error = first["error"]
    assert error["type"] == "NODE_FAILED" and list(error["details"]["nodes"]) == ["scenario"]
    assert error["message"].startswith("Node(s) did not complete: scenario: "), error
    log = workflows.log(workflow["id"], first["id"])
    assert "node again skipped: upstream scenario did not complete" in log, log

    # Fix the model (same name: replaced), then retry from failure.
    client.upload(p["scenario"], SCENARIO.name, SCENARIO)
    retried = workflows.retry(workflow["id"], first["id"])
    assert retried["retry_of"] == first["id"] and retried["id"] != first["id"]
    retried = workflows.wait(workflow["id"], retried["id"], "COMPLETED", 60)

    again = nodes_of(retried)
    kept = again["shape"]["instances"][0]
    assert kept["reused"] is True and again["shape"]["run_ids"] == nodes["shape"]["run_ids"]
    assert pipeline_run_count(client, p["shape"]) == 1  # not run again
    assert again["scenario"]["run_ids"] != nodes["scenario"]["run_ids"]
    assert not again["scenario"]["instances"][0]["reused"]
    # The kept run's artifact reached the re-run nodes: 1000 x shape x 3 x 2.
    output = columns(download(client, node_run(client, again["again"]), "scaled.csv"))
    assert output == [[6000 * s] for s in SHAPE], output
    # The failed run is unchanged: a retry is a new run.
    assert workflows.get(workflow["id"], first["id"])["state"] == "FAILED"


@pytest.mark.timeout(120)
def test_cancel_stops_the_running_node_runs(client, workflows):
    """Cancel while two instances of a long simulation run: both pipeline runs are
    really stopped (CANCELLING, then CANCELLED), the node after them never starts."""
    long = client.pipeline_with_files(f"models/{LONG.name}", residential_files(LONG))["id"]
    after = client.pipeline_with_files(LOAD_SHAPE.name, [(LOAD_SHAPE.name, LOAD_SHAPE)])["id"]
    workflow = workflows.create([
        {"name": "long", "pipeline_id": long, "sweep": {"randomseed": ["1", "2"]}},
        {"name": "after", "pipeline_id": after, "depends_on": ["long"]},
    ])  # fmt: skip
    run = workflows.start(workflow["id"])

    def simulating() -> list[dict[str, Any]] | None:
        node = nodes_of(workflows.get(workflow["id"], run["id"]))["long"]
        runs = [node_run(client, node, i) for i in range(len(node["instances"]))]
        assert all(r["state"] not in TERMINAL for r in runs), [r["state"] for r in runs]
        progressing = all(r["state"] == "RUNNING" and (r["progress"] or {}).get("percent")
                          for r in runs)  # fmt: skip
        return runs if progressing else None

    deadline = time.monotonic() + 60
    while not (running := simulating()):
        assert time.monotonic() < deadline, describe(workflows.get(workflow["id"], run["id"]))
        time.sleep(0.2)

    response = client.post(f"{API}/workflows/{workflow['id']}/runs/{run['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "CANCELLING", response.json()["state"]
    run = workflows.wait(workflow["id"], run["id"], "CANCELLED", 30)

    for before in running:
        stopped = client.get_run(long, before["id"])
        assert history(stopped)[-3:] == ["RUNNING", "CANCELLING", "CANCELLED"], stopped["states"]
        assert stopped["error"]["type"] == "CANCELLED", stopped["error"]
        # Stopped early: a year of simulated time was not reached.
        assert stopped["progress"]["percent"] < 100, stopped["progress"]
    assert run["error"]["type"] == "CANCELLED", run["error"]
    nodes = nodes_of(run)
    assert nodes["after"]["state"] == "CANCELLED" and nodes["after"]["run_ids"] == []
    assert nodes["after"]["instances"][0]["reason"] == "the workflow run was cancelled"
    assert pipeline_run_count(client, after) == 0
    # The last node run stopped before the workflow run ended.
    ended = when(run["finished_at"])
    assert all(when(client.get_run(long, r["id"])["finished_at"]) <= ended for r in running)
