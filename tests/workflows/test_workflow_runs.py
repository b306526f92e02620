"""Workflows through the real API (in process, SQLite and PostgreSQL): definitions and
their validation, runs driven by their node runs, hand-off of artifacts, failure,
cancel, retry and exactly-once joins. Workers are played through the worker API."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from app.extensions import db
from app.runs.sweeper import sweep_once

API = "/api/v1.0"
W = f"{API}/worker/runs"


@pytest.fixture
def make_pipeline(client, client_headers):
    def make(name="p"):
        pipeline = client.post(
            f"{API}/pipelines", json={"name": name, "model": "m.glm"}, headers=client_headers
        ).get_json()
        client.post(
            f"{API}/pipelines/{pipeline['id']}/files?name=m.glm",
            data=b"clock {}\n",
            headers=client_headers,
        )
        return pipeline["id"]

    return make


@pytest.fixture
def wf(client, client_headers):
    """Create a workflow from nodes; return (workflow, response)."""

    def create(nodes, **fields):
        response = client.post(
            f"{API}/workflows", json={"name": "w", "nodes": nodes, **fields}, headers=client_headers
        )
        return response

    return create


class Worker:
    """Plays a worker through the worker API."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def claim(self, run_id):
        body = {"worker_id": "w", "claim_token": uuid.uuid4().hex}
        response = self.client.post(f"{W}/{run_id}/claim", json=body, headers=self.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def upload(self, run_id, name, data):
        response = self.client.put(
            f"{W}/{run_id}/artifacts/{name}?attempt=1", data=data, headers=self.headers
        )
        assert response.status_code == 201, response.get_json()

    def finish(self, run_id, state="COMPLETED", error=None):
        response = self.client.post(
            f"{W}/{run_id}/state",
            json={"attempt": 1, "state": state, "error": error},
            headers=self.headers,
        )
        assert response.status_code == 200, response.get_json()

    def run(self, run_id, state="COMPLETED", artifacts=None, error=None):
        claim = self.claim(run_id)
        for name, data in (artifacts or {}).items():
            self.upload(run_id, name, data)
        self.finish(run_id, state, error)
        return claim


@pytest.fixture
def worker(client, worker_headers):
    return Worker(client, worker_headers)


def start(client, headers, workflow_id, body=None):
    response = client.post(f"{API}/workflows/{workflow_id}/runs", json=body or {}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def get(client, headers, workflow_id, run_id):
    return client.get(f"{API}/workflows/{workflow_id}/runs/{run_id}", headers=headers).get_json()


def nodes_of(run):
    return {node["name"]: node for node in run["nodes"]}


# --- definitions ------------------------------------------------------------------------


def test_validation_names_what_is_wrong(wf, make_pipeline):
    p = make_pipeline()
    unknown = wf([{"name": "a", "pipeline_id": "nope"}])
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"]["nodes"]["0"]["pipeline_id"] == [
        "Node 'a': no pipeline nope"
    ]
    missing = wf(
        [
            {"name": "a", "pipeline_id": p},
            {"name": "b", "pipeline_id": p, "depends_on": ["zz"],
             "inputs": [{"name": "x.csv", "from": {"node": "yy", "artifact": "o.csv"}}]},
        ]
    )  # fmt: skip
    errors = missing.get_json()["errors"]["nodes"]["1"]
    assert errors["depends_on"] == ["Node 'b': no node 'zz'"]
    assert errors["inputs.0.from.node"] == ["Node 'b': no node 'yy'"]
    duplicate = wf([{"name": "a", "pipeline_id": p}, {"name": "a", "pipeline_id": p}])
    assert duplicate.get_json()["errors"]["nodes"]["1"]["name"] == ["Duplicate node name 'a'"]
    cycle = wf(
        [
            {"name": "a", "pipeline_id": p, "depends_on": ["c"]},
            {"name": "b", "pipeline_id": p, "depends_on": ["a"]},
            {"name": "c", "pipeline_id": p, "depends_on": ["b"]},
        ]
    )
    assert cycle.status_code == 422
    assert cycle.get_json()["errors"]["nodes"]["_graph"] == ["cycle: a -> b -> c -> a"]
    assert "cycle: a -> b -> c -> a" in cycle.get_json()["message"]


def test_a_pipeline_used_by_a_workflow_cannot_be_deleted(client, client_headers, wf, make_pipeline):
    p = make_pipeline()
    workflow = wf([{"name": "a", "pipeline_id": p}], name="study").get_json()
    response = client.delete(f"{API}/pipelines/{p}", headers=client_headers)
    assert response.status_code == 409 and response.get_json()["code"] == "PIPELINE_IN_USE"
    assert (
        "study" in response.get_json()["message"]
        and workflow["id"] in response.get_json()["message"]
    )
    client.delete(f"{API}/workflows/{workflow['id']}", headers=client_headers)
    assert client.delete(f"{API}/pipelines/{p}", headers=client_headers).status_code == 204


# --- runs -----------------------------------------------------------------------------------


def test_artifacts_flow_downstream_and_sweeps_fan_in(
    client, client_headers, worker, wf, make_pipeline
):
    p = make_pipeline()
    workflow = wf(
        [
            {"name": "base", "pipeline_id": p, "parameters": {"LOAD": "1"}},
            {"name": "shaped", "pipeline_id": p,
             "inputs": [{"name": "shape.player",
                         "from": {"node": "base", "artifact": "load.csv"}}]},
            {"name": "sweep", "pipeline_id": p, "sweep": {"SCALE": ["0.8", "1.2"]}},
            {"name": "report", "pipeline_id": p, "depends_on": ["shaped"],
             "inputs": [{"name": "out.csv", "from": {"node": "sweep", "artifact": "out.csv"}}]},
        ]
    ).get_json()  # fmt: skip
    run = start(client, client_headers, workflow["id"], {"parameters": {"base": {"LOAD": "2"}}})
    nodes = nodes_of(run)
    assert run["state"] == "RUNNING"
    assert [i["state"] for i in nodes["sweep"]["instances"]] == ["READY", "READY"]
    assert nodes["shaped"]["state"] == nodes["report"]["state"] == "WAITING"
    base_claim = worker.run(nodes["base"]["run_ids"][0], artifacts={"load.csv": b"t,v\n0,42\n"})
    assert base_claim["job"]["parameters"] == {"LOAD": "2"}
    nodes = nodes_of(get(client, client_headers, workflow["id"], run["id"]))
    assert nodes["shaped"]["state"] == "READY"  # started by base's end, no sweep needed
    shaped = worker.claim(nodes["shaped"]["run_ids"][0])
    files = {f["name"]: f["url"] for f in shaped["job"]["files"]}
    assert set(files) == {"m.glm", "shape.player"}
    fetched = client.get(files["shape.player"], headers=worker.headers)
    assert fetched.status_code == 200 and fetched.data == b"t,v\n0,42\n"
    worker.finish(nodes["shaped"]["run_ids"][0])
    sweep_ids = nodes["sweep"]["run_ids"]
    scales = [worker.run(i, artifacts={"out.csv": f"{i}".encode()})["job"]["parameters"]
              for i in sweep_ids]  # fmt: skip
    assert [s["SCALE"] for s in scales] == ["0.8", "1.2"]
    nodes = nodes_of(get(client, client_headers, workflow["id"], run["id"]))
    report = worker.claim(nodes["report"]["run_ids"][0])
    names = sorted(f["name"] for f in report["job"]["files"] if f["name"] != "m.glm")
    assert names == ["SCALE-0.8/out.csv", "SCALE-1.2/out.csv"]
    worker.finish(nodes["report"]["run_ids"][0])
    done = get(client, client_headers, workflow["id"], run["id"])
    assert done["state"] == "COMPLETED" and done["progress"]["percent"] == 100
    logs = client.get(
        f"{API}/workflows/{workflow['id']}/runs/{run['id']}/logs", headers=client_headers
    ).get_json()
    text = "\n".join(line["line"] for line in logs["lines"])
    assert "node base started" in text and "node sweep[SCALE=1.2] ended COMPLETED" in text


def test_a_failure_skips_all_success_dependants_and_runs_all_done_ones(
    client, client_headers, worker, wf, make_pipeline
):
    p = make_pipeline()
    workflow = wf(
        [
            {"name": "a", "pipeline_id": p},
            {"name": "b", "pipeline_id": p},
            {"name": "after_a", "pipeline_id": p, "depends_on": ["a"]},
            {"name": "after_after_a", "pipeline_id": p, "depends_on": ["after_a"]},
            {"name": "after_b", "pipeline_id": p, "depends_on": ["b"]},
            {"name": "cleanup", "pipeline_id": p, "depends_on": ["a", "b"], "trigger": "all_done"},
        ]
    ).get_json()
    run = start(client, client_headers, workflow["id"])
    nodes = nodes_of(run)
    worker.run(nodes["a"]["run_ids"][0], "FAILED", error={"type": "MODEL_ERROR", "message": "bad"})
    nodes = nodes_of(get(client, client_headers, workflow["id"], run["id"]))
    assert nodes["after_a"]["state"] == "SKIPPED"
    assert nodes["after_a"]["instances"][0]["reason"] == "upstream a did not complete"
    assert nodes["after_after_a"]["state"] == "SKIPPED"
    assert nodes["cleanup"]["state"] == "WAITING"  # b has not ended
    worker.run(nodes["b"]["run_ids"][0])  # the independent branch goes on
    nodes = nodes_of(get(client, client_headers, workflow["id"], run["id"]))
    assert nodes["after_b"]["state"] == "READY" and nodes["cleanup"]["state"] == "READY"
    worker.run(nodes["after_b"]["run_ids"][0])
    worker.run(nodes["cleanup"]["run_ids"][0])
    ended = get(client, client_headers, workflow["id"], run["id"])
    assert ended["state"] == "FAILED" and ended["error"]["type"] == "NODE_FAILED"
    assert list(ended["error"]["details"]["nodes"]) == ["a"]
    assert "a: bad" in ended["error"]["message"]


def _b_needs_an_artifact_a_never_makes(p: str) -> list[dict[str, Any]]:
    """a -> b (reads a's out.csv, which a trivial run never writes) -> c, and d (all_done)."""
    return [
        {"name": "a", "pipeline_id": p},
        {"name": "b", "pipeline_id": p,
         "inputs": [{"name": "in.csv", "from": {"node": "a", "artifact": "out.csv"}}]},
        {"name": "c", "pipeline_id": p, "depends_on": ["b"]},
        {"name": "d", "pipeline_id": p, "depends_on": ["b"], "trigger": "all_done"},
    ]  # fmt: skip


def test_a_node_that_cannot_start_skips_its_dependants_at_once(
    client, client_headers, worker, wf, make_pipeline
):
    """A missing upstream artifact fails the node without a run; what depends on it is
    decided in the same step, not left WAITING for the sweeper."""
    workflow = wf(_b_needs_an_artifact_a_never_makes(make_pipeline())).get_json()
    run = start(client, client_headers, workflow["id"])
    worker.run(nodes_of(run)["a"]["run_ids"][0])  # completes without out.csv
    nodes = nodes_of(get(client, client_headers, workflow["id"], run["id"]))
    assert nodes["b"]["state"] == "FAILED" and nodes["b"]["run_ids"] == []
    assert "missing upstream artifacts: a/out.csv" in nodes["b"]["instances"][0]["reason"]
    assert nodes["c"]["state"] == "SKIPPED"
    assert nodes["d"]["state"] == "READY"
    worker.run(nodes["d"]["run_ids"][0])
    ended = get(client, client_headers, workflow["id"], run["id"])
    assert ended["state"] == "FAILED" and list(ended["error"]["details"]["nodes"]) == ["b"]


def test_fail_fast_when_a_node_cannot_start(client, client_headers, worker, wf, make_pipeline):
    """A node that cannot start under fail_fast closes the rest at once: nothing is left
    WAITING in a run that has ended."""
    nodes = _b_needs_an_artifact_a_never_makes(make_pipeline())
    workflow = wf(nodes, fail_fast=True).get_json()
    run = start(client, client_headers, workflow["id"])
    worker.run(nodes_of(run)["a"]["run_ids"][0])  # completes without out.csv
    ended = get(client, client_headers, workflow["id"], run["id"])
    nodes = nodes_of(ended)
    assert ended["state"] == "FAILED"
    assert "missing upstream artifacts" in ended["error"]["details"]["nodes"]["b"]["reason"]
    assert nodes["b"]["state"] == "FAILED" and nodes["b"]["run_ids"] == []
    for name in ("c", "d"):
        assert nodes[name]["state"] == "CANCELLED" and nodes[name]["run_ids"] == []
        assert nodes[name]["instances"][0]["reason"] == "fail_fast: node b could not start"


def test_fail_fast_cancels_the_rest(client, client_headers, worker, wf, make_pipeline):
    p = make_pipeline()
    workflow = wf(
        [
            {"name": "a", "pipeline_id": p},
            {"name": "b", "pipeline_id": p},
            {"name": "c", "pipeline_id": p, "depends_on": ["b"]},
        ],
        fail_fast=True,
    ).get_json()
    run = start(client, client_headers, workflow["id"])
    nodes = nodes_of(run)
    worker.claim(nodes["b"]["run_ids"][0])
    worker.run(nodes["a"]["run_ids"][0], "FAILED", error={"type": "MODEL_ERROR", "message": "x"})
    ended = get(client, client_headers, workflow["id"], run["id"])
    nodes = nodes_of(ended)
    assert ended["state"] == "FAILED"
    assert nodes["b"]["state"] == "CANCELLING"  # told to stop right after the commit
    assert nodes["c"]["state"] == "CANCELLED"
    assert nodes["c"]["instances"][0]["reason"] == "fail_fast: node a failed"


def test_cancel_stops_running_nodes_and_pending_ones_never_start(
    client, client_headers, worker, wf, make_pipeline
):
    p = make_pipeline()
    workflow = wf(
        [{"name": "a", "pipeline_id": p}, {"name": "b", "pipeline_id": p, "depends_on": ["a"]}]
    ).get_json()
    run = start(client, client_headers, workflow["id"])
    a = nodes_of(run)["a"]["run_ids"][0]
    worker.claim(a)
    url = f"{API}/workflows/{workflow['id']}/runs/{run['id']}"
    cancelled = client.post(f"{url}/cancel", headers=client_headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "CANCELLING"
    beat = client.post(f"{W}/{a}/heartbeat", json={"attempt": 1}, headers=worker.headers)
    assert beat.get_json()["cancel_requested"] is True  # the node run was told to stop
    worker.finish(a, "CANCELLED")
    ended = get(client, client_headers, workflow["id"], run["id"])
    assert ended["state"] == "CANCELLED"
    assert nodes_of(ended)["b"]["state"] == "CANCELLED" and not nodes_of(ended)["b"]["run_ids"]


def test_retry_reruns_only_what_did_not_complete(client, client_headers, worker, wf, make_pipeline):
    p = make_pipeline()
    workflow = wf(
        [
            {"name": "a", "pipeline_id": p},
            {"name": "b", "pipeline_id": p,
             "inputs": [{"name": "in.csv", "from": {"node": "a", "artifact": "a.csv"}}]},
        ]
    ).get_json()  # fmt: skip
    run = start(client, client_headers, workflow["id"])
    a = nodes_of(run)["a"]["run_ids"][0]
    worker.run(a, artifacts={"a.csv": b"1"})
    b = nodes_of(get(client, client_headers, workflow["id"], run["id"]))["b"]["run_ids"][0]
    worker.run(b, "FAILED", error={"type": "MODEL_ERROR", "message": "oops"})
    url = f"{API}/workflows/{workflow['id']}/runs/{run['id']}"
    retried = client.post(f"{url}/retry", headers=client_headers)
    assert retried.status_code == 201, retried.get_json()
    new = retried.get_json()
    assert new["retry_of"] == run["id"] and new["id"] != run["id"]
    nodes = nodes_of(new)
    assert nodes["a"]["run_ids"] == [a] and nodes["a"]["instances"][0]["reused"] is True
    assert nodes["b"]["state"] == "READY" and nodes["b"]["run_ids"] != [b]
    claim = worker.claim(nodes["b"]["run_ids"][0])
    assert [f["name"] for f in claim["job"]["files"]] == ["m.glm", "in.csv"]
    worker.finish(nodes["b"]["run_ids"][0])
    assert get(client, client_headers, workflow["id"], new["id"])["state"] == "COMPLETED"
    again = client.post(f"{url}/retry", headers=client_headers)  # the old run is still FAILED
    assert again.status_code == 201
    done = client.post(
        f"{API}/workflows/{workflow['id']}/runs/{new['id']}/retry", headers=client_headers
    )
    assert done.status_code == 409  # a completed run has nothing to retry


def test_editing_a_workflow_never_changes_a_started_run(client, client_headers, wf, make_pipeline):
    p = make_pipeline()
    workflow = wf([{"name": "a", "pipeline_id": p}]).get_json()
    run = start(client, client_headers, workflow["id"])
    changed = client.put(
        f"{API}/workflows/{workflow['id']}",
        json={"name": "w", "nodes": [{"name": "z", "pipeline_id": p}]},
        headers=client_headers,
    )
    assert changed.status_code == 200
    assert [n["name"] for n in get(client, client_headers, workflow["id"], run["id"])["nodes"]] == [
        "a"
    ]


JOIN_PARENTS = 50


def test_a_join_starts_exactly_once_when_its_parents_finish_together(
    app, client, client_headers, worker_headers, wf, make_pipeline
):
    p = make_pipeline()
    nodes = [{"name": f"p{i}", "pipeline_id": p} for i in range(JOIN_PARENTS)]
    nodes.append({"name": "join", "pipeline_id": p, "depends_on": [n["name"] for n in nodes]})
    workflow = wf(nodes).get_json()
    for _ in range(2):
        run = start(client, client_headers, workflow["id"])
        parents = [n["run_ids"][0] for n in run["nodes"] if n["name"] != "join"]
        for run_id in parents:
            Worker(client, worker_headers).claim(run_id)
        db.session.remove()  # end this thread's transaction: no lock held during the race
        barrier = threading.Barrier(JOIN_PARENTS)

        def finish(run_id, barrier=barrier):
            barrier.wait()
            Worker(app.test_client(), worker_headers).finish(run_id)

        with ThreadPoolExecutor(JOIN_PARENTS) as pool:
            list(pool.map(finish, parents))
        ended = get(client, client_headers, workflow["id"], run["id"])
        join = nodes_of(ended)["join"]
        assert len(join["run_ids"]) == 1 and join["state"] == "READY", join
        pipeline_runs = client.get(
            f"{API}/pipelines/{p}/runs?limit=500", headers=client_headers
        ).get_json()["items"]
        children = [r for r in pipeline_runs if r["id"] in join["run_ids"]]
        assert len(children) == 1
        db.session.remove()


def test_the_sweeper_decides_what_an_interrupted_advance_left_open(
    app, client, client_headers, worker, wf, make_pipeline
):
    """Simulate an advance that never happened: the node run ended but its row says not."""
    from app.runs.models import Run
    from app.workflows.models import NodeStatus, WorkflowNodeRun

    p = make_pipeline()
    workflow = wf(
        [{"name": "a", "pipeline_id": p}, {"name": "b", "pipeline_id": p, "depends_on": ["a"]}]
    ).get_json()
    run = start(client, client_headers, workflow["id"])
    a = nodes_of(run)["a"]["run_ids"][0]
    worker.run(a)
    row = db.session.query(WorkflowNodeRun).filter_by(node="b").one()
    db.session.delete(db.session.get(Run, row.pipeline_run_id))  # as if never decided
    row.status, row.pipeline_run_id = NodeStatus.WAITING, None
    db.session.query(WorkflowNodeRun).filter_by(node="a").one().status = NodeStatus.STARTED
    db.session.commit()
    assert sweep_once(db.session, app.config["SETTINGS"])["parents_reconciled"] == 1
    nodes = nodes_of(get(client, client_headers, workflow["id"], run["id"]))
    assert nodes["a"]["state"] == "COMPLETED" and nodes["b"]["state"] == "READY"


def test_progress_folds_in_the_running_nodes_percent(
    client, client_headers, worker, wf, make_pipeline
):
    p = make_pipeline()
    workflow = wf([{"name": "a", "pipeline_id": p}, {"name": "b", "pipeline_id": p}]).get_json()
    run = start(client, client_headers, workflow["id"])
    a, b = (node["run_ids"][0] for node in run["nodes"])
    worker.run(a)
    worker.claim(b)
    client.post(f"{W}/{b}/progress", json={"attempt": 1, "percent": 50}, headers=worker.headers)
    progress = get(client, client_headers, workflow["id"], run["id"])["progress"]
    assert progress["percent"] == 75.0  # (1 ended + 0.5 of one running) / 2
    assert progress["message"] == "1 of 2 node runs ended, 1 running"
