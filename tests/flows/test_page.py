"""The flow's page in process: its steps planned at creation and drawn as a graph from the
SQL, the live view repainting them, and a SQL error's line marked in its transform.

The browser test (tests/e2e/test_page_browser.py) follows a real flow in Chromium."""

from __future__ import annotations

import re
import uuid

import pytest

from app.flows import steps as flow_steps
from app.flows.page import step_detail
from tests.flows import data as flow_data
from tests.flows.test_api import API, stores  # noqa: F401
from tests.flows.test_runs import _flow_input
from tests.page.test_page import _sign_in

SOURCES = [
    {"store_id": "pg", "tables": [{"table": "public.meters"}]},
    {"store_id": "maria", "tables": [{"table": "feeders", "name": "grid_feeders"}]},
    {"store_id": "csv", "files": [{"name": "tariffs", "pattern": "*.csv"}]},
]


def test_step_graph_follows_the_sql():
    transforms = [
        {"name": "Info", "sql": "SELECT m.id, f.name FROM meters m JOIN grid_feeders f USING (id)"},
        {"name": "priced", "persist": True,
         "sql": "WITH x AS (SELECT * FROM info)\nSELECT * FROM x JOIN tariffs USING (id)"},
    ]  # fmt: skip
    checks = [{"type": "unique", "table": "PRICED", "column": "id"}]
    order = ["info", "priced"]
    graph = flow_steps.step_graph(SOURCES, transforms, order, checks)
    assert graph == [
        ("ingest meters", []),
        ("ingest grid_feeders", []),
        ("ingest tariffs", []),
        ("transform info", ["ingest meters", "ingest grid_feeders"]),
        ("transform priced", ["ingest tariffs", "transform info"]),
        ("check unique PRICED.id", ["transform priced"]),
        ("publish", ["transform priced", "check unique PRICED.id"]),
    ]
    planned = flow_steps.plan(SOURCES, order, checks)
    assert [step["name"] for step in planned] == [name for name, _ in graph]
    assert {step["state"] for step in planned} == {"PENDING"}


def test_checks_that_read_alike_get_steps_of_their_own():
    checks = [
        {"type": "row_count", "table": "meters", "min": 1},
        {"type": "row_count", "table": "meters", "max": 9},
        {"type": "not_null", "table": "meters", "column": "id"},
        {"type": "row_count", "table": "meters", "max": 99},
    ]
    assert flow_steps.check_steps(checks) == [
        "check row_count meters", "check row_count meters (2)",
        "check not_null meters.id", "check row_count meters (3)",
    ]  # fmt: skip
    graph = flow_steps.step_graph(SOURCES[:1], [], [], checks)
    assert graph[-1] == ("publish", flow_steps.check_steps(checks))


@pytest.mark.parametrize(
    ("rows", "shown"),
    [(950, "950"), (999_999, "1.0M"), (12_345, "12.3k"), (4_500_000_000, "4.5G")],
)
def test_box_counts_are_short(rows, shown):
    assert step_detail({"rows": rows, "seconds": None}) == f" · {shown} rows"


def _claim(client, worker_headers, run_id: str) -> None:
    claim = client.post(
        f"{API}/worker/runs/{run_id}/claim",
        json={"worker_id": "w1", "claim_token": uuid.uuid4().hex},
        headers=worker_headers,
    )
    assert claim.status_code == 200, claim.get_json()


def test_flow_page_draws_steps_and_marks_the_sql_error_line(
    client,
    client_headers,
    worker_headers,
    stores,  # noqa: F811
):
    flow_input_id = _flow_input(client, client_headers, stores)
    run = client.post(
        f"{API}/flows", json={"flow_input_id": flow_input_id}, headers=client_headers
    ).get_json()
    # Planned at creation: the API shows every step PENDING before a worker takes it.
    assert [s["state"] for s in run["steps"]] == ["PENDING"] * len(run["steps"])
    assert run["steps"][0]["name"] == "ingest meters" and run["steps"][-1]["name"] == "publish"
    assert _sign_in(client, client_headers["Authorization"].split()[1]).status_code == 303

    html = client.get(f"/page/runs/{run['id']}").get_data(as_text=True)
    assert "Flow of feeder-energy" in html
    boxes = re.findall(r'data-node="([^"]+)"', html)
    assert boxes == [s["name"] for s in run["steps"]]
    # One arrow per data dependency: 6 transforms read 12 tables, 4 checks, the publish
    # waits for 3 published transforms and 4 checks.
    assert html.count("<path d=") == 12 + 4 + 7
    assert 'class="error-line"' not in html

    _claim(client, worker_headers, run["id"])
    steps = [{**run["steps"][0], "state": "COMPLETED", "rows": 1234567, "seconds": 0.5}]
    response = client.put(
        f"{API}/worker/runs/{run['id']}/flow-steps",
        json={"attempt": 1, "steps": steps},
        headers=worker_headers,
    )
    assert response.status_code == 204, response.get_json()
    live = client.get(f"/page/runs/{run['id']}/live.json").get_json()
    assert live["nodes"][0] == {
        "name": "ingest meters", "state": "COMPLETED", "detail": " · 1.2M rows · 0.50 s",
        "rows": 1234567, "seconds": 0.5, "message": None, "instances": [],
    }  # fmt: skip

    billing = next(t for t in flow_data.TRANSFORMS if t["name"] == "billing")
    line = billing["sql"].split("\n")[1]
    error = {"type": "SQL_ERROR", "message": "Transform billing (line 2, column 6): Binder",
             "details": {"transform": "billing", "line": 2, "column": 6}}  # fmt: skip
    finish = client.post(
        f"{API}/worker/runs/{run['id']}/state",
        json={"attempt": 1, "state": "FAILED", "error": error},
        headers=worker_headers,
    )
    assert finish.status_code == 200, finish.get_json()
    html = client.get(f"/page/runs/{run['id']}").get_data(as_text=True)
    marked = re.findall(r'<li data-line="(\d+)" class="error-line"[^>]*><code>(.*?)</code>', html)
    assert marked == [("2", line.replace("<", "&lt;"))]
    assert "error here, column 6" in html
    assert "In transform <code>billing</code>, line 2, column 6" in html
    assert re.search(r'<details class="sql" data-transform="billing" open>', html)
    assert html.count('class="error-line"') == 1
