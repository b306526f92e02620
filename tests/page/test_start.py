"""The start page in-process: make a pipeline, add its files, start runs of every kind, and
every mistake answered beside its field with nothing stored (on SQLite and PostgreSQL).

The browser test (tests/e2e/test_page_browser.py, ``-k create_and_start``) does the same
by clicking, against the whole service with GridLAB-D running the model.
"""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.runs.models import Run
from tests.page.conftest import csrf

API = "/api/v1.0"
MODEL = b"clock { starttime '2000-01-01 00:00:00'; stoptime '2000-01-01 00:00:01'; }\n"


def _post(client: FlaskClient, path: str, data: dict[str, Any], token: bool = True) -> Any:
    if token:
        data = {"csrf_token": csrf(client, "/page/start"), **data}
    if path.startswith("/page/start/") and "once" not in data:
        data = {"once": _once(client) if token else "a-well-formed-token", **data}
    return client.post(path, data=data, content_type="multipart/form-data")


def _once(client: FlaskClient) -> str:
    """A start form's once-only token, as the page renders it."""
    match = re.search(r'name="once" value="([^"]+)"', client.get("/page/start").get_data(True))
    assert match
    return match.group(1)


def _errors(html: str) -> dict[str, str]:
    """The reasons the page shows, by the form field they are about."""
    found = re.findall(r'data-error-for="([^"]*)">([^<]*)</p>', html)
    return {field: reason for field, reason in found}


def _count(client: FlaskClient, headers: dict[str, str], path: str) -> int:
    return len(client.get(f"{API}{path}", headers=headers).get_json()["items"])


def _published(app: Flask, run_id: str) -> bool:
    """Whether the run's task was sent to the broker (after the start's commit)."""
    db.session.rollback()  # this test's own session (the app fixture's context): read afresh
    published = db.session.get(Run, run_id).dispatched_at is not None
    db.session.rollback()
    return published


def _objects(app: Flask) -> list[Path]:
    root = Path(app.config["SETTINGS"].ARTIFACTS_DIR)
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_start_page_offers_every_form(signed_in):
    html = signed_in.get("/page/start").get_data(as_text=True)
    ids = re.findall(r'<section class="start-form[^"]*" id="([^"]+)"', html)
    assert ids == [
        "make-pipeline",
        "make-pipeline-files",
        "start-pipeline",
        "start-workflow",
        "start-job",
        "start-flow",
    ]
    assert 'href="/page/start"' in signed_in.get("/page/").get_data(as_text=True)  # nav
    assert 'enctype="multipart/form-data"' in html
    assert "No pipelines yet" in html and "POST /api/v1.0/workflows" in html
    assert '<option value="voltage_report"' in html  # an installed job kind


def test_make_a_pipeline_add_its_files_and_start_it(signed_in, client_headers, app):
    made = _post(
        signed_in,
        "/page/make/pipeline",
        {
            "name": "hvac",
            "model": "models/test_HVAC_common_cool.glm",
            "parameters": "A=1\n# a comment\n\nB = two words",
            "timeout_seconds": "90",
        },
    )
    assert made.status_code == 303, made.get_data(as_text=True)
    pipeline = signed_in.get(f"{API}/pipelines", headers=client_headers).get_json()["items"][0]
    assert pipeline["parameters"] == {"A": "1", "B": "two words"}
    assert pipeline["timeout_seconds"] == 90
    assert made.headers["Location"] == (
        f"/page/start?pipeline_id={pipeline['id']}#make-pipeline-files"
    )
    page = signed_in.get(made.headers["Location"]).get_data(as_text=True)
    assert "Pipeline &#39;hvac&#39; made" in page
    assert f'<option value="{pipeline["id"]}" selected>' in page
    assert "(model not uploaded yet)" in page

    added = _post(
        signed_in,
        "/page/make/pipeline-files",
        {
            "pipeline_id": pipeline["id"],
            "files-1-file": (io.BytesIO(MODEL), "test_HVAC_common_cool.glm"),
            "files-1-name": "models/test_HVAC_common_cool.glm",
            "files-2-file": (io.BytesIO(b"weather"), "WA-Yakima.tmy2"),  # its own name
            "files-3-name": "ignored: no file in this row",
        },
    )
    assert added.status_code == 303, added.get_data(as_text=True)
    assert added.headers["Location"].endswith("#start-pipeline")
    files = signed_in.get(
        f"{API}/pipelines/{pipeline['id']}/files", headers=client_headers
    ).get_json()["items"]
    assert sorted((f["name"], f["size"]) for f in files) == [
        ("WA-Yakima.tmy2", 7),
        ("models/test_HVAC_common_cool.glm", len(MODEL)),
    ]
    page = signed_in.get(added.headers["Location"]).get_data(as_text=True)
    assert "Stored models/test_HVAC_common_cool.glm, WA-Yakima.tmy2" in page
    assert "(model not uploaded yet)" not in page

    started = _post(
        signed_in,
        "/page/start/pipeline",
        {"pipeline_id": pipeline["id"], "parameters": '{"B": 3, "C": "x"}', "timeout_seconds": ""},
    )
    assert started.status_code == 303, started.get_data(as_text=True)
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    assert started.headers["Location"] == f"/page/runs/{run_id}"
    run = signed_in.get(
        f"{API}/pipelines/{pipeline['id']}/runs/{run_id}", headers=client_headers
    ).get_json()
    assert run["state"] == "READY"
    assert run["parameters"] == {"A": "1", "B": "3", "C": "x"}  # the API's merge and text
    assert run["timeout_seconds"] == 90
    assert _published(app, run_id)
    assert "Run of pipeline" in signed_in.get(started.headers["Location"]).get_data(as_text=True)


def test_the_same_name_replaces_a_file_and_its_old_object(
    signed_in, client_headers, pipeline, model_file, app
):
    before = _objects(app)
    assert len(before) == 1
    replaced = _post(
        signed_in,
        "/page/make/pipeline-files",
        {"pipeline_id": pipeline["id"], "files-1-file": (io.BytesIO(b"new model"), "model.glm")},
    )
    assert replaced.status_code == 303
    after = _objects(app)
    assert len(after) == 1 and after != before and after[0].read_bytes() == b"new model"


@pytest.mark.parametrize(
    ("form", "status", "field"),
    [
        ({"pipeline_id": "no-such-pipeline"}, 404, "pipeline_id"),
        ({"pipeline_id": ""}, 422, "pipeline_id"),
        ({"pipeline_id": "a\x00b"}, 422, "pipeline_id"),
        ({"parameters": '{"A": 1'}, 422, "parameters"),
        ({"parameters": "just words"}, 422, "parameters"),
        ({"parameters": "BAD NAME=1"}, 422, "parameters"),
        ({"parameters": '{"A": [1]}'}, 422, "parameters"),
        ({"parameters": '{"A": "nul\\u0000"}'}, 422, "parameters"),
        ({"parameters": "[" * 100_000}, 422, "parameters"),
        ({"timeout_seconds": "soon"}, 422, "timeout_seconds"),
        ({"timeout_seconds": "0"}, 422, "timeout_seconds"),
        ({"inputs": '[{"name": "../x", "url": "https://example.com/x"}]'}, 422, "inputs"),
    ],
)
def test_a_bad_start_names_its_field_and_starts_nothing(
    signed_in, client_headers, pipeline, model_file, form, status, field
):
    sent = {"pipeline_id": pipeline["id"], **form}
    response = _post(signed_in, "/page/start/pipeline", sent)
    html = response.get_data(as_text=True)
    assert response.status_code == status, html
    assert field in _errors(html), _errors(html)
    assert 'id="start-pipeline-message"' in html  # the form says what went wrong
    if "parameters" in form and "\x00" not in form["parameters"] and len(form["parameters"]) < 99:
        assert form["parameters"].replace('"', "&#34;") in html  # kept to correct
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/runs") == 0


def test_a_pipeline_without_its_model_is_not_started(signed_in, client_headers, pipeline):
    response = _post(signed_in, "/page/start/pipeline", {"pipeline_id": pipeline["id"]})
    assert response.status_code == 422
    # Not a field of this form: said above it, with the field the API names.
    shown = _errors(response.get_data(as_text=True))[""]
    assert shown.startswith("model: No file &#39;model.glm&#39;; it has no files yet"), shown
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/runs") == 0


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"model": "m.glm"}, "name"),
        ({"name": "x", "model": "model.txt"}, "model"),
        ({"name": "x", "model": "../m.glm"}, "model"),
        ({"name": "x", "model": "m.glm", "parameters": "A"}, "parameters"),
        ({"name": "x" * 201, "model": "m.glm"}, "name"),
    ],
)
def test_a_bad_pipeline_names_its_field_and_makes_nothing(signed_in, client_headers, form, field):
    response = _post(signed_in, "/page/make/pipeline", form)
    assert response.status_code == 422
    assert field in _errors(response.get_data(as_text=True))
    assert _count(signed_in, client_headers, "/pipelines") == 0


@pytest.mark.parametrize(
    ("rows", "field", "reason"),
    [
        ({"files-1-name": "../x"}, "files-1-name", "must not contain empty, &#39;.&#39; or"),
        ({"files-1-name": "/etc/passwd"}, "files-1-name", "must be a relative path"),
        ({"files-1-name": "a/./b"}, "files-1-name", "must not contain empty"),
        ({"files-1-name": "x\x00y"}, "files-1-name", "each path segment"),
        ({"files-2-name": "model.glm"}, "files-2-name", "is given to row 1 too"),
        ({"files-2-file": (b"x", "..")}, "files-2-name", "must not contain"),  # its own name
    ],
)
def test_a_hostile_file_name_is_refused_and_nothing_stored(
    signed_in, client_headers, pipeline, app, rows, field, reason
):
    form = {
        "pipeline_id": pipeline["id"],
        "files-1-file": (io.BytesIO(MODEL), "model.glm"),
        "files-2-file": (io.BytesIO(b"second"), "second.txt"),
        **{k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in rows.items()},
    }
    response = _post(signed_in, "/page/make/pipeline-files", form)
    errors = _errors(response.get_data(as_text=True))
    assert response.status_code == 422
    assert reason in errors[field], errors
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/files") == 0
    assert _objects(app) == []


def test_files_for_an_unknown_pipeline_or_no_files(signed_in, app):
    unknown = _post(
        signed_in,
        "/page/make/pipeline-files",
        {"pipeline_id": "nope", "files-1-file": (io.BytesIO(MODEL), "model.glm")},
    )
    assert unknown.status_code == 404
    assert "pipeline_id" in _errors(unknown.get_data(as_text=True))
    none = _post(signed_in, "/page/make/pipeline-files", {"pipeline_id": "nope"})
    assert none.status_code == 422
    assert _errors(none.get_data(as_text=True))["files"] == "Choose at least one file"
    assert _objects(app) == []


def test_files_over_the_upload_limit_are_refused(signed_in, client_headers, pipeline, app):
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, MAX_FILE_UPLOAD_BYTES=1000)
    big = {
        "pipeline_id": pipeline["id"],
        "files-1-file": (io.BytesIO(b"x" * 1_002_000), "model.glm"),
    }
    response = _post(signed_in, "/page/make/pipeline-files", big)
    assert response.status_code == 413
    assert "MAX_FILE_UPLOAD_BYTES" in response.get_data(as_text=True)
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/files") == 0
    app.config["SETTINGS"] = settings


def test_each_file_is_held_to_the_upload_limit_all_or_none(
    signed_in, client_headers, pipeline, app
):
    """Every file within MAX_FILE_UPLOAD_BYTES, as the API's: the first, stored before the
    second was found too large, is deleted again."""
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, MAX_FILE_UPLOAD_BYTES=1000)
    form = {
        "pipeline_id": pipeline["id"],
        "files-1-file": (io.BytesIO(b"x" * 1000), "model.glm"),
        "files-2-file": (io.BytesIO(b"x" * 1001), "big.csv"),
    }
    response = _post(signed_in, "/page/make/pipeline-files", form)
    app.config["SETTINGS"] = settings
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "&#39;big.csv&#39; is larger than the limit of 1000 bytes" in html
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/files") == 0
    assert _objects(app) == []


@pytest.mark.parametrize(
    "path", ["/page/start/pipeline", "/page/make/pipeline", "/page/make/pipeline-files"]
)
def test_every_form_needs_the_csrf_token_and_a_session(
    client, signed_in, client_headers, pipeline, model_file, path
):
    form = {
        "pipeline_id": pipeline["id"],
        "name": "x",
        "model": "m.glm",
        "files-1-file": (io.BytesIO(b"x"), "x.glm"),
    }
    refused = _post(signed_in, path, form, token=False)
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    signed_in.post("/page/signout", data={"csrf_token": csrf(signed_in, "/page/start")})
    form["files-1-file"] = (io.BytesIO(b"x"), "x.glm")
    assert _post(client, path, form, token=False).status_code == 401
    assert _count(client, client_headers, "/pipelines") == 1
    assert _count(client, client_headers, f"/pipelines/{pipeline['id']}/runs") == 0
    names = [f["name"] for f in model_file and [model_file]]
    listed = client.get(f"{API}/pipelines/{pipeline['id']}/files", headers=client_headers)
    assert [f["name"] for f in listed.get_json()["items"]] == names


def test_nothing_of_that_name(signed_in):
    assert _post(signed_in, "/page/start/nope", {}).status_code == 404
    assert _post(signed_in, "/page/make/nope", {}).status_code == 404


def test_start_a_workflow_and_name_a_node_it_lacks(
    signed_in, client_headers, pipeline, model_file, app
):
    workflow = signed_in.post(
        f"{API}/workflows",
        json={"name": "two", "nodes": [{"name": "a", "pipeline_id": pipeline["id"]}]},
        headers=client_headers,
    ).get_json()
    page = signed_in.get("/page/start").get_data(as_text=True)
    assert f'<option value="{workflow["id"]}"' in page
    wrong = _post(
        signed_in,
        "/page/start/workflow",
        {"workflow_id": workflow["id"], "parameters": '{"b": {"X": "1"}}'},
    )
    assert wrong.status_code == 422
    assert _errors(wrong.get_data(as_text=True))["parameters"] == "b: No such node"
    runs = f"/workflows/{workflow['id']}/runs"
    assert _count(signed_in, client_headers, runs) == 0
    started = _post(
        signed_in,
        "/page/start/workflow",
        {"workflow_id": workflow["id"], "parameters": '{"a": {"X": "1"}}'},
    )
    assert started.status_code == 303, started.get_data(as_text=True)
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    run = signed_in.get(f"{API}{runs}/{run_id}", headers=client_headers).get_json()
    assert run["state"] == "RUNNING"  # its root node's run was created
    node_run = run["nodes"][0]["instances"][0]
    assert node_run["run_id"] and node_run["state"] == "READY"
    assert _published(app, node_run["run_id"])


def test_start_a_job_kind_checks_its_parameters(signed_in, client_headers, app):
    wrong = _post(
        signed_in,
        "/page/start/job",
        {"kind": "voltage_report", "parameters": '{"nominal_voltage": "high"}'},
    )
    assert wrong.status_code == 422
    assert (
        _errors(wrong.get_data(as_text=True))["parameters"]
        == "nominal_voltage: Not a valid number."
    )
    unknown = _post(signed_in, "/page/start/job", {"kind": "nope"})
    assert unknown.status_code == 404 and "kind" in _errors(unknown.get_data(as_text=True))
    assert _count(signed_in, client_headers, "/job-kinds/voltage_report/runs") == 0
    started = _post(
        signed_in,
        "/page/start/job",
        {"kind": "voltage_report", "parameters": '{"nominal_voltage": 2401.7771}'},
    )
    assert started.status_code == 303, started.get_data(as_text=True)
    html = signed_in.get(started.headers["Location"]).get_data(as_text=True)
    assert "Run of job kind voltage_report" in html and "2401.7771" in html
    assert _published(app, started.headers["Location"].rsplit("/", 1)[1])


def test_start_a_flow_input(signed_in, client_headers, app):
    folder = Path(app.config["SETTINGS"].FLOWS_DATA_ROOT) / "page-csv"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "readings.csv").write_text("meter,kwh\nM1,1.5\n")
    stores = []
    for body in (
        {"name": "csv", "type": "FILE", "engine": "csv", "path": "page-csv"},
        {"name": "duck", "type": "COLUMNAR", "engine": "duckdb", "path": "page-out/w.duckdb"},
    ):
        response = signed_in.post(f"{API}/data-stores", json=body, headers=client_headers)
        assert response.status_code == 201, response.get_json()
        stores.append(response.get_json()["id"])
    flow_input = signed_in.post(
        f"{API}/flow-inputs",
        json={
            "name": "page-flow",
            "sources": [{"store_id": stores[0], "files": [{"name": "r", "pattern": "*.csv"}]}],
            "target_store_id": stores[1],
            "transforms": [
                {"name": "total", "sql": "SELECT sum(kwh) AS k FROM r", "persist": True}
            ],
        },
        headers=client_headers,
    )
    assert flow_input.status_code == 201, flow_input.get_json()
    flow_input_id = flow_input.get_json()["id"]
    assert f'<option value="{flow_input_id}">page-flow</option>' in signed_in.get(
        "/page/start"
    ).get_data(as_text=True)
    started = _post(signed_in, "/page/start/flow", {"flow_input_id": flow_input_id})
    assert started.status_code == 303, started.get_data(as_text=True)
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    flow = signed_in.get(f"{API}/flows/{run_id}", headers=client_headers).get_json()
    assert flow["state"] == "READY" and flow["flow_input_id"] == flow_input_id
    assert _published(app, run_id)


def test_start_a_flow_input_that_is_not_there(signed_in, client_headers):
    response = _post(signed_in, "/page/start/flow", {"flow_input_id": "nope"})
    assert response.status_code == 404
    assert "flow_input_id" in _errors(response.get_data(as_text=True))
    assert _count(signed_in, client_headers, "/flows") == 0


def test_a_link_preselects_only_a_list(signed_in, pipeline):
    """A link may choose the pipeline; it may not fill in what a person would then start."""
    page = signed_in.get(
        f"/page/start?pipeline_id={pipeline['id']}&inputs=EVIL-INPUTS&parameters=EVIL=1"
    ).get_data(as_text=True)
    assert f'<option value="{pipeline["id"]}" selected>' in page
    assert "EVIL" not in page


def test_a_form_without_files_keeps_the_small_limit(signed_in, client_headers):
    """Only a form of files may be as large as an upload: a big pipeline form is 413."""
    big = _post(
        signed_in,
        "/page/make/pipeline",
        {"name": "big", "model": "m.glm", "description": "x" * 2_000_000},
    )
    assert big.status_code == 413
    assert _count(signed_in, client_headers, "/pipelines") == 0


def test_a_start_form_sent_twice_starts_one_run(signed_in, client_headers, pipeline, model_file):
    form = {"pipeline_id": pipeline["id"], "once": _once(signed_in)}
    first = _post(signed_in, "/page/start/pipeline", form)
    again = _post(signed_in, "/page/start/pipeline", form)
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/runs") == 1
    other = _post(signed_in, "/page/start/pipeline", {"pipeline_id": pipeline["id"]})
    assert other.headers["Location"] != first.headers["Location"]  # a new form: a new run
    edited = _post(signed_in, "/page/start/pipeline", {**form, "parameters": "X=2"})
    assert edited.status_code == 409 and "already sent with other values" in edited.get_data(
        as_text=True
    )
    stale = _post(signed_in, "/page/start/pipeline", {**form, "once": "x"})
    assert stale.status_code == 422 and "out of date" in stale.get_data(as_text=True)
    assert _count(signed_in, client_headers, f"/pipelines/{pipeline['id']}/runs") == 2
