"""The run page in a real browser: Debian's Chromium driven by Playwright, against the
whole service (gunicorn, PostgreSQL, Redis, S3, a worker) running real GridLAB-D.

Nothing is downloaded: Playwright drives /usr/bin/chromium (installed by .ci/run and the
README's test command). Screenshots of every page go to test-artifacts/page/.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import IEEE13, LONG, MEDIUM, WEATHER, residential_files
from tests.e2e.harness import E2E_MODELS, REPO, Service, wait_until
from tests.e2e.stack import Stack

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "test-artifacts" / "page"
WAIT_MS = 60_000
# Pixels of the plot's canvas in the first series' blue (#0969da): the curve was drawn.
BLUE_PIXELS = """() => {
  const c = document.getElementById('plot');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] && d[i + 2] > 150 && d[i] < 60) n++;
  return n;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    # bypass_csp: the page's CSP forbids eval, which Playwright's wait_for_function uses;
    # the page's own script needs none.
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, accept_downloads=True, bypass_csp=True
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, stack: Stack, token: str | None = None) -> None:
    page.goto(f"{stack.api_url}/")
    page.goto(f"{stack.api_url}{page_link(page)}")
    assert "/page/signin" in page.url  # not signed in: the form
    page.fill("#key", stack.client_token if token is None else token)
    page.click("form.signin button")


def page_link(page: Page) -> str:
    """``GET /`` names the page among its links."""
    return page.evaluate("JSON.parse(document.body.innerText).links.page")


def state_is(page: Page, state: str, timeout: float = WAIT_MS) -> None:
    page.wait_for_function(
        # ``?.``: between a form's POST and the page it redirects to there is no element.
        "s => document.getElementById('state')?.textContent === s",
        arg=state,
        timeout=timeout,
    )


def _make_pipeline_with_files(
    page: Page, name: str, model: str, files: list[tuple[Path, str]]
) -> str:
    """Make a pipeline and add its files by the start page's forms (each file's row names
    it, or leaves the file's own name); return its id, preselected for the start."""
    page.fill("#make-pipeline-name", name)
    page.fill("#make-pipeline-model", model)
    page.click("#make-pipeline-submit")
    page.wait_for_selector("#notice")
    assert f"Pipeline '{name}' made" in page.inner_text("#notice")
    pipeline_id = page.input_value("#make-pipeline-files-pipeline_id")
    assert f"pipeline_id={pipeline_id}" in page.url
    for row, (path, stored_as) in enumerate(files, 1):
        page.set_input_files(f"#make-pipeline-files-files-{row}-file", str(path))
        page.fill(f"#make-pipeline-files-files-{row}-name", stored_as)
    page.click("#make-pipeline-files-submit")
    page.wait_for_selector("#notice")
    stored = [stored_as or path.name for path, stored_as in files]
    assert f"Stored {', '.join(stored)} in pipeline '{name}'." == page.inner_text("#notice")
    assert page.input_value("#start-pipeline-pipeline_id") == pipeline_id
    return pipeline_id


@pytest.mark.timeout(240)
def test_create_and_start_from_the_page_ieee13_residential_and_a_workflow(page, stack, client):
    """What a new user does without a terminal: make the IEEE-13 pipeline, upload its model,
    start it and see it complete; the same for the residential model with its weather file
    at the job root; then run a workflow (made with the API: the page only starts them)."""
    sign_in(page, stack)
    page.wait_for_selector("table#runs")
    page.click("#nav-start")
    page.wait_for_selector("#make-pipeline")
    shot(page, "start-empty")

    ieee13 = _make_pipeline_with_files(page, "ieee13 from the page", IEEE13.name, [(IEEE13, "")])
    # A mistake first: it comes back beside its field, what was typed kept, nothing run.
    page.fill("#start-pipeline-parameters", "SIZE 3")
    page.click("#start-pipeline-submit")
    error = page.inner_text("#start-pipeline-parameters-error")
    assert error == "Line 1: write KEY=VALUE, or give a JSON object"
    assert page.input_value("#start-pipeline-parameters") == "SIZE 3"
    assert page.get_attribute("#start-pipeline-parameters", "aria-invalid") == "true"
    shot(page, "start-mistake")
    assert client.get(f"/api/v1.0/pipelines/{ieee13}/runs").json()["items"] == []
    page.fill("#start-pipeline-parameters", "")
    page.click("#start-pipeline-submit")
    page.wait_for_url("**/page/runs/*")
    assert "Run of pipeline" in page.inner_text("h1")
    state_is(page, "COMPLETED", 90_000)
    page.wait_for_selector("#artifacts a")  # its outputs, ready to plot or download
    shot(page, "started-ieee13-completed")

    page.click("#nav-start")
    residential = _make_pipeline_with_files(
        page,
        "residential from the page",
        f"models/{MEDIUM.name}",
        [(MEDIUM, f"models/{MEDIUM.name}"), (WEATHER, "")],
    )
    page.fill("#start-pipeline-parameters", "")
    page.click("#start-pipeline-submit")
    page.wait_for_url("**/page/runs/*")
    state_is(page, "COMPLETED", 90_000)
    run_id = page.url.rsplit("/", 1)[1]
    run = client.get_run(residential, run_id)
    assert any(a["name"].endswith("medium_hourly.csv") for a in run["artifacts"]), run
    shot(page, "started-residential-completed")

    workflow = client.post(
        "/api/v1.0/workflows",
        json={
            "name": "page-started",
            "nodes": [
                {"name": "feeder", "pipeline_id": ieee13},
                {"name": "again", "pipeline_id": ieee13, "depends_on": ["feeder"]},
            ],
        },
    )
    assert workflow.status_code == 201, workflow.text
    page.click("#nav-start")
    page.select_option("#start-workflow-workflow_id", workflow.json()["id"])
    page.click("#start-workflow-submit")
    page.wait_for_url("**/page/runs/*")
    assert page.inner_text("h1").startswith("Run of workflow page-started")
    state_is(page, "COMPLETED", 90_000)
    for name in ("feeder", "again"):
        node = page.locator(f"#dag a[data-node='{name}']")
        assert node.get_attribute("aria-label") == f"{name}: COMPLETED"
    shot(page, "started-workflow-completed")


def test_sign_in_refuses_a_bad_key_and_csrf_guards_actions(page, stack, client):
    sign_in(page, stack, "not-a-key")
    assert "Unknown or revoked API key" in page.inner_text("#signin-error")
    page.fill("#key", stack.worker_token)
    page.click("form.signin button")
    assert "lacks the PIPELINES_CLIENT permission" in page.inner_text("#signin-error")
    shot(page, "signin-refused")
    page.fill("#key", stack.client_token)
    page.click("form.signin button")
    page.wait_for_selector("table#runs")
    assert stack.client_token not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "jobs_page")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # A model that fails to load: the page shows the error with its file and line.
    broken = E2E_MODELS / "broken.glm"
    pipeline = client.pipeline_with_files("broken.glm", [("broken.glm", broken)])
    run = client.create_run(pipeline["id"])
    client.wait_for_state(pipeline["id"], run["id"], "FAILED", 60)
    page.goto(f"{stack.api_url}/page/runs/{run['id']}")
    assert page.inner_text("#error-type") == "MODEL_ERROR"
    assert "broken.glm" in page.inner_text("#error-where")
    assert "line 11" in page.inner_text("#error-where")
    shot(page, "pipeline-run-failed")

    # The session cookie alone does not make a POST: the form's token is needed.
    cancel_url = f"{stack.api_url}/page/runs/{run['id']}/cancel"
    refused = page.request.post(cancel_url, max_redirects=0)
    assert refused.status == 403 and "CSRF" in refused.text()
    token = page.get_attribute("#cancel-form input[name=csrf_token]", "value")
    with_token = page.request.post(cancel_url, form={"csrf_token": token}, max_redirects=0)
    assert with_token.status == 409 and "ended" in with_token.text()  # past CSRF: the run ended


@pytest.mark.timeout(150)
def test_live_progress_log_tail_and_cancel(page, stack, client):
    pipeline = client.pipeline_with_files(f"models/{LONG.name}", residential_files(LONG))
    sign_in(page, stack)
    run = client.create_run(pipeline["id"])
    started = time.monotonic()
    page.goto(f"{stack.api_url}/page/runs/{run['id']}")
    state_is(page, "RUNNING")
    page.wait_for_function("document.getElementById('progress').value > 0")
    first = page.evaluate("document.getElementById('progress').value")
    page.wait_for_function(f"document.getElementById('progress').value > {first}")
    assert "%" in page.inner_text("#progress-text")
    page.wait_for_function("document.getElementById('log').textContent.length > 0")
    lines = page.evaluate("document.getElementById('log').textContent.split('\\n').length")
    page.wait_for_function(
        f"document.getElementById('log').textContent.split('\\n').length > {lines}"
    )
    shot(page, "pipeline-run-live")
    # The log is read from its cursor: the page's lines are the API's, none twice.
    with page.expect_navigation():  # the cancel form POSTs, then shows the run again
        page.click("#cancel")
    state_is(page, "CANCELLED", 30_000)
    stopped = client.get_run(pipeline["id"], run["id"])
    assert stopped["state"] == "CANCELLED" and stopped["error"]["type"] == "CANCELLED"
    assert page.is_hidden("#cancel-form") and page.is_visible("#action-rerun")
    page.wait_for_function("document.getElementById('log').dataset.complete === 'true'")
    shown = page.evaluate("document.getElementById('log').textContent").splitlines()
    assert shown == [line["line"] for line in client.all_logs(pipeline["id"], run["id"])]
    shot(page, "pipeline-run-cancelled")
    print(f"\nlong run followed and cancelled from the page in {time.monotonic() - started:.1f} s")


def _recorder(data: bytes, column: str) -> tuple[list[str], list[float]]:
    lines = data.decode().splitlines()
    header = [line for line in lines if line.startswith("#")][-1].lstrip("# ").split(",")
    rows = list(csv.reader(io.StringIO("\n".join(ln for ln in lines if not ln.startswith("#")))))
    index = header.index(column)
    return [row[0] for row in rows], [float(row[index]) for row in rows]


@pytest.mark.timeout(120)
def test_plot_holds_the_csv_curve_and_runs_list_follows(page, stack, client):
    pipeline = client.pipeline_with_files(f"models/{MEDIUM.name}", residential_files(MEDIUM))
    sign_in(page, stack)
    run = client.create_run(pipeline["id"])
    row = f"tr[data-run='{run['id']}']"
    page.wait_for_selector(row)  # the list polls: the new run appears without a reload
    page.wait_for_function(
        "sel => (document.querySelector(sel) || {}).textContent?.includes('COMPLETED')",
        arg=row,
        timeout=90_000,
    )
    shot(page, "runs-list")
    page.click(f"{row} a")
    options = "[...document.querySelectorAll('#plot-artifact option')].map(o => o.value)"
    page.wait_for_function(f"{options}.some(v => v.endsWith('medium_hourly.csv'))")
    name = next(v for v in page.evaluate(options) if v.endswith("medium_hourly.csv"))
    page.select_option("#plot-artifact", name)
    page.wait_for_function("window.pagePlot && window.pagePlot.columns.includes('air_temperature')")
    page.get_by_label("air_temperature", exact=True).check()
    page.wait_for_function("window.pagePlot.ys.includes('air_temperature')")
    plotted: dict[str, Any] = page.evaluate(
        "window.pagePlot.series.find(s => s.name === 'air_temperature')"
    )
    assert page.evaluate("window.pagePlot.x") == "timestamp"
    assert page.evaluate("window.pagePlot.x_kind") == "time"

    with page.expect_download() as download:
        page.click(f"#artifacts a:text-is('{name}')")
    data = Path(download.value.path()).read_bytes()
    times, temperatures = _recorder(data, "air_temperature")
    assert len(temperatures) > 24
    assert plotted["y"] == pytest.approx(temperatures)
    steps = {b - a for a, b in zip(plotted["x"], plotted["x"][1:], strict=False)}
    assert steps == {3600 * 1000}, "hourly recorder: one hour between points"
    assert times[0].startswith("2001-07-24 01:00:00")
    # The canvas holds the drawing: non-background pixels in the series' colours.
    drawn = page.evaluate(BLUE_PIXELS)
    assert drawn > 200, drawn
    shot(page, "pipeline-run-plot")


@pytest.mark.timeout(120)
def test_workflow_dag_shows_failed_node_and_skipped_dependants(page, stack, client):
    broken = client.pipeline_with_files("broken.glm", [("broken.glm", E2E_MODELS / "broken.glm")])
    workflow = client.post(
        "/api/v1.0/workflows",
        json={
            "name": "page-dag",
            "nodes": [
                {"name": "load", "pipeline_id": broken["id"]},
                {"name": "scale", "pipeline_id": broken["id"], "sweep": {"S": ["1", "2"]}},
                {"name": "after_load", "pipeline_id": broken["id"], "depends_on": ["load"]},
                {"name": "report", "pipeline_id": broken["id"], "depends_on": ["after_load"]},
            ],
        },
    )
    assert workflow.status_code == 201, workflow.text
    base = f"/api/v1.0/workflows/{workflow.json()['id']}/runs"
    run = client.post(base, json={}).json()
    sign_in(page, stack)
    page.goto(f"{stack.api_url}/page/runs/{run['id']}")
    wait_until(
        lambda: client.get(f"{base}/{run['id']}").json()["state"] == "FAILED",
        60,
        "the workflow run to fail",
    )
    state_is(page, "FAILED")
    for name, state in [("load", "FAILED"), ("after_load", "SKIPPED"), ("report", "SKIPPED")]:
        node = page.locator(f"#dag a[data-node='{name}']")
        assert node.get_attribute("class") == f"node state-{state}"
        assert state in node.text_content()  # said in words, not by colour alone
        assert node.get_attribute("aria-label") == f"{name}: {state}"
    assert "2 instances" in page.locator("#dag a[data-node='scale']").text_content()
    assert page.locator("tr[data-node-row='scale'] .instance").count() == 2
    assert page.is_visible("#action-retry")
    shot(page, "workflow-run-dag")
    page.focus("#dag a[data-node='load']")
    page.keyboard.press("Enter")  # by keyboard: the node opens its run
    page.wait_for_selector("#error-type")
    assert page.inner_text("#error-type") == "MODEL_ERROR"
    assert "Run of pipeline" in page.inner_text("h1")


def _flow_worker(stack: Stack) -> Service:
    """The data worker of the flow queue (an earlier flow test may have started it)."""
    for worker in stack.workers:
        if worker.name.startswith("flowworker") and worker.running():
            return worker
    return stack.add_flow_worker()


@contextlib.contextmanager
def paused(service: Service) -> Iterator[None]:
    """``service`` stopped (SIGSTOP) for the block: what it would take waits for it."""
    os.killpg(service.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(service.pid, signal.SIGCONT)


@pytest.mark.timeout(150)
def test_flow_page_shows_steps_and_marks_the_sql_error_line(page, stack, client):
    worker = _flow_worker(stack)
    folder = stack.flows_data / "page-meters"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(f"M{i}", "F1" if i % 2 else "F2", 1.5 * i) for i in range(1, 41)]
    (folder / "readings.csv").write_text(
        "meter,feeder,kwh\n" + "".join(f"{m},{f},{k}\n" for m, f, k in rows)
    )
    stores = {}
    for key, body in {
        "csv": {"type": "FILE", "engine": "csv", "path": "page-meters"},
        "duck": {"type": "COLUMNAR", "engine": "duckdb", "path": "page-out/w.duckdb"},
    }.items():
        response = client.post("/api/v1.0/data-stores", json={"name": f"page-{key}", **body})
        assert response.status_code == 201, response.text
        stores[key] = response.json()["id"]
    # by_feeder runs; its typo on line 3 (kwh_total for total) fails at run time, in DuckDB:
    # no parser sees it, so the page must mark the line the engine names.
    flow_input = client.post(
        "/api/v1.0/flow-inputs",
        json={
            "name": "page-flow",
            "sources": [{"store_id": stores["csv"],
                         "files": [{"name": "readings", "pattern": "*.csv"}]}],
            "target_store_id": stores["duck"],
            "transforms": [
                {"name": "by_feeder", "sql": "SELECT feeder, sum(kwh) AS total\n"
                                              "FROM readings GROUP BY feeder"},
                {"name": "ranked", "persist": True,
                 "sql": "SELECT feeder,\n"
                        "       total,\n"
                        "       rank() OVER (ORDER BY kwh_total DESC) AS r\n"
                        "FROM by_feeder"},
            ],
        },
    )  # fmt: skip
    assert flow_input.status_code == 201, flow_input.text
    sign_in(page, stack)
    with paused(worker):  # the page is open before the flow runs: what follows comes live
        run = client.post("/api/v1.0/flows", json={"flow_input_id": flow_input.json()["id"]})
        page.goto(f"{stack.api_url}/page/runs/{run.json()['id']}")
        assert page.inner_text("#state") == "READY"
        ranked = page.locator("#dag a[data-node='transform ranked']")
        assert ranked.get_attribute("aria-label") == "transform ranked: PENDING"
        assert page.locator("li.error-line").count() == 0
    state_is(page, "FAILED")
    assert page.inner_text("#error-type") == "SQL_ERROR"
    assert page.inner_text("#error-where") == "In transform ranked, line 3, column 30"
    states = {"ingest readings": "COMPLETED", "transform by_feeder": "COMPLETED",
              "transform ranked": "FAILED", "publish": "SKIPPED"}  # fmt: skip
    for name, state in states.items():
        node = page.locator(f"#dag a[data-node='{name}']")
        assert node.get_attribute("aria-label").startswith(f"{name}: {state}")
        assert state in node.text_content()  # in words, not by colour alone
    ingest = page.locator("#dag a[data-node='ingest readings']")
    assert "40 rows" in ingest.text_content() and "40 rows" in ingest.get_attribute("aria-label")
    assert page.inner_text("tr[data-node-row='transform by_feeder'] td[data-cell='rows']") == "2"
    marked = page.locator("details.sql[data-transform='ranked'] li.error-line")
    assert marked.count() == 1 and marked.get_attribute("data-line") == "3"
    assert "kwh_total" in marked.inner_text() and "error here, column 30" in marked.inner_text()
    assert page.locator("details.sql[data-transform='ranked']").get_attribute("open") is not None
    page.wait_for_selector("#log[data-complete='true']")
    assert "ingest readings: 40 rows" in page.inner_text("#log")
    shot(page, "flow-run-sql-error")
    page.focus("#dag a[data-node='transform ranked']")
    page.keyboard.press("Enter")  # by keyboard: the box leads to the step's row
    assert page.url.endswith("#step-3")
