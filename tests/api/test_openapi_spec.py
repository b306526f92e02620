"""What the OpenAPI spec and the Swagger UI say, read as a client (or a person) reads them.

tests/api/test_openapi_fuzz.py checks the server against the spec; these check that the spec
says the things a client needs, and that the UI's pre-filled bodies are ones the API accepts.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.filenames import MAX_NAME_LENGTH, NAME_PATTERN, name_problem
from app.pipelines.schemas import HTTP_URL_PATTERN, INPUT_URL_PATTERN, InputSchema
from tests.conftest import make_settings

OPERATIONS = {
    "getHome", "getLiveness", "getReadiness",
    "listPipelines", "createPipeline", "getPipeline", "replacePipeline", "deletePipeline",
    "listPipelineFiles", "uploadPipelineFile",
    "listPipelineRuns", "createPipelineRun", "getPipelineRun", "cancelPipelineRun",
    "listPipelineRunLogs", "downloadPipelineRunArtifact",
    "claimRun", "renewRunLease", "reportRunProgress", "appendRunLogs", "uploadRunArtifact",
    "finishRunAttempt", "getRunFile", "reportUnusedParameters",
    "listWorkflows", "createWorkflow", "getWorkflow", "replaceWorkflow", "deleteWorkflow",
    "listWorkflowRuns", "createWorkflowRun", "getWorkflowRun", "cancelWorkflowRun",
    "retryWorkflowRun", "listWorkflowRunLogs", "downloadWorkflowRunArtifact",
    "listJobKinds", "getJobKind", "listJobRuns", "createJobRun", "getJobRun", "cancelJobRun",
    "listJobRunLogs", "downloadJobRunArtifact", "announceJobKinds", "getJobRunInput",
    "listDataStores", "createDataStore", "getDataStore", "replaceDataStore", "deleteDataStore",
    "testDataStore", "listFlowInputs", "createFlowInput", "getFlowInput",
    "listFlows", "createFlow", "getFlow", "cancelFlow", "cancelFlowByPath", "listFlowLogs",
    "downloadFlowArtifact", "reportFlowSteps",
    "listSchedules", "createSchedule", "getSchedule", "replaceSchedule", "deleteSchedule",
}  # fmt: skip
PUBLIC = {"getHome", "getLiveness", "getReadiness"}


@pytest.fixture
def spec(client) -> dict[str, Any]:
    return client.get("/apispec.json").get_json()


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation)."""
    return {
        operation["operationId"]: (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_every_operation_has_a_stable_id(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec).values()]
    assert len(ids) == len(set(ids))
    assert set(ids) == OPERATIONS


def test_errors_are_listed_per_operation_not_as_default(spec):
    for name, (_method, path, operation) in operations(spec).items():
        responses = operation["responses"]
        assert "default" not in responses, name
        if name in PUBLIC:
            assert operation["security"] == [] and not {"401", "403"} & set(responses)
        else:
            assert "security" not in operation and {"401", "403"} <= set(responses), name
        if "{" in path:
            assert {"404", "422"} <= set(responses), name


def test_error_body_is_code_message_errors(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "message", "errors"}
    assert "code" in error["required"]
    unauthorized = resolve(spec, spec["components"]["responses"]["Unauthorized"])
    assert unauthorized["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_headers_are_documented(spec):
    ops = operations(spec)
    for name in ("createPipeline", "createPipelineRun"):
        headers = ops[name][2]["responses"]["201"]["headers"]
        assert resolve(spec, headers["Location"])["required"] is True
    for name, status in (("createPipelineRun", "201"), ("cancelPipelineRun", "200")):
        operation = ops[name][2]
        parameters = [resolve(spec, p) for p in operation["parameters"]]
        assert {"in": "header", "name": "Idempotency-Key"}.items() <= parameters[0].items()
        assert "Idempotent-Replayed" in operation["responses"][status]["headers"]


def test_file_replace_and_optional_bodies_are_documented(spec):
    ops = operations(spec)
    upload = ops["uploadPipelineFile"][2]
    assert {"200", "201", "413"} <= set(upload["responses"])
    assert ops["createPipelineRun"][2]["requestBody"]["required"] is False
    assert ops["createPipeline"][2]["requestBody"]["required"] is True
    assert "415" in ops["createPipelineRun"][2]["responses"]


def test_validator_rules_are_in_the_spec(spec):
    schemas = spec["components"]["schemas"]
    pipeline = schemas["Pipeline"]["properties"]
    assert re.fullmatch(pipeline["model"]["pattern"], "models/feeder.GLM")
    assert not re.fullmatch(pipeline["model"]["pattern"], "models/feeder.txt")
    assert pipeline["timeout_seconds"]["minimum"] == 1
    assert pipeline["parameters"]["x-propertyNames"]["pattern"]
    assert schemas["Input"]["properties"]["url"]["pattern"] == INPUT_URL_PATTERN
    assert schemas["RunCreate"]["properties"]["callback_url"]["pattern"] == HTTP_URL_PATTERN
    assert schemas["Finish"]["properties"]["state"]["enum"] == ["COMPLETED", "FAILED", "CANCELLED"]
    assert schemas["Finish"]["properties"]["attempt"]["type"] == "integer"
    artifact_name = spec["paths"]["/api/v1.0/worker/runs/{run_id}/artifacts/{name}"]["parameters"]
    assert {"pattern": NAME_PATTERN, "maxLength": MAX_NAME_LENGTH}.items() <= next(
        p["schema"] for p in artifact_name if p["name"] == "name"
    ).items()


def test_timeout_range_is_the_configured_one(tmp_path, _migrated):
    app = create_app(make_settings(tmp_path, _migrated, MAX_TIMEOUT_SECONDS=1234))
    spec = app.test_client().get("/apispec.json").get_json()
    timeout = spec["components"]["schemas"]["Pipeline"]["properties"]["timeout_seconds"]
    assert (timeout["minimum"], timeout["maximum"]) == (1, 1234)


def test_nullable_objects_keep_their_shape(spec):
    run = spec["components"]["schemas"]["PipelineRun"]["properties"]
    for name, target in (("progress", "Progress"), ("error", "RunError")):
        assert run[name]["nullable"] is True
        assert run[name]["allOf"] == [{"$ref": f"#/components/schemas/{target}"}]


_NAME_CHARS = st.text(st.sampled_from("aZ09_.+- /\\\n:é\x00"), max_size=12)


@settings(max_examples=300, database=None, deadline=None)
@given(st.one_of(_NAME_CHARS, st.from_regex(NAME_PATTERN, fullmatch=True)))
def test_file_name_pattern_is_name_problem(name):
    by_pattern = re.fullmatch(NAME_PATTERN, name) is not None and len(name) <= MAX_NAME_LENGTH
    assert by_pattern == (name_problem(name) is None)


@settings(
    max_examples=200,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the app is only read
)
@given(st.from_regex(INPUT_URL_PATTERN, fullmatch=True).filter(lambda url: len(url) <= 4096))
def test_every_url_the_pattern_allows_is_an_accepted_input(app, url):
    # The field's own check must not refuse, or crash on, what the spec allows; only the
    # deployment's outbound policy (app/outbound.py) may refuse it, saying so.
    errors = InputSchema().validate({"name": "in.csv", "url": url})
    reasons = errors.get("url", [])
    assert errors.keys() <= {"url"}
    assert all(_is_policy_refusal(reason) for reason in reasons), reasons


def _is_policy_refusal(reason: str) -> bool:
    return reason.startswith("Refused:") or "INPUT_S3_BUCKETS" in reason


# --- the Swagger UI ---------------------------------------------------------------------


UNDEFINED = object()  # what JavaScript leaves out of JSON.stringify


def swagger_sample(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The body the Swagger UI (3.x) pre-fills from a schema: an example, else a sample
    built from types (its sampleFromSchema, with allOf merged as its resolver does)."""
    schema = resolve(spec, schema)
    for part in schema.get("allOf", []):
        schema = {**resolve(spec, part), **{k: v for k, v in schema.items() if k != "allOf"}}
    if "example" in schema:
        return schema["example"]
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind == "object":
        sample = {
            name: swagger_sample(spec, prop)
            for name, prop in schema.get("properties", {}).items()
            if not resolve(spec, prop).get("readOnly")
        }
        if extra := schema.get("additionalProperties"):
            value = {} if extra is True else swagger_sample(spec, extra)
            sample |= {f"additionalProp{i}": value for i in (1, 2, 3)}
        return {name: value for name, value in sample.items() if value is not UNDEFINED}
    if kind == "array":
        return [swagger_sample(spec, schema["items"])]
    if "enum" in schema:
        return schema.get("default") or schema["enum"][0]
    return {"string": "string", "integer": 0, "number": 0, "boolean": True}.get(kind, UNDEFINED)


def prefilled_body(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    media = operation["requestBody"]["content"]["application/json"]
    return media["example"] if "example" in media else swagger_sample(spec, media["schema"])


def test_prefilled_bodies_are_accepted(spec, client, client_headers, worker_headers, run):
    """Try it out, Execute: each JSON body the UI offers is valid as it stands."""
    ops = operations(spec)
    ids = {"pipeline_id": run["pipeline_id"], "run_id": run["id"], "kind": "csv_summary"}
    order = ["createPipeline", "replacePipeline", "createPipelineRun", "claimRun",
             "renewRunLease", "reportRunProgress", "appendRunLogs", "reportUnusedParameters",
             "finishRunAttempt", "announceJobKinds", "createJobRun", "createDataStore"]  # fmt: skip
    with_body = {
        n for n, (_, _, op) in ops.items() if "application/json" in str(op.get("requestBody"))
    }
    # These bodies name other resources (a pipeline, a workflow) that an example cannot know.
    naming_others = {"createWorkflow", "replaceWorkflow", "createWorkflowRun", "createFlowInput",
                     "createFlow", "replaceDataStore", "reportFlowSteps", "createSchedule",
                     "replaceSchedule"}  # fmt: skip
    assert with_body - naming_others == set(order)
    for name in order:
        method, path, operation = ops[name]
        headers = worker_headers if "/worker/" in path else client_headers
        if name == "createPipelineRun":  # as a user would: upload the model it now names
            model = prefilled_body(spec, ops["replacePipeline"][2])["model"]
            client.post(
                f"/api/v1.0/pipelines/{ids['pipeline_id']}/files?name={model}",
                data=b"clock {}\n",
                headers=client_headers,
            )
        response = client.open(
            path.format(**ids), method=method.upper(), json=prefilled_body(spec, operation),
            headers=headers,
        )  # fmt: skip
        assert 200 <= response.status_code < 300, (name, response.get_json())


def test_swagger_ui_is_the_services_and_fetches_nothing_outside(client):
    page = client.get("/apidocs/").get_data(as_text=True)
    assert "<title>GridLAB-D job service API</title>" in page
    assert not re.findall(r"""(?:href|src)=["']https?://""", page)
    assert "fonts.googleapis" not in page


def test_description_shows_the_header_as_code(spec):
    # Swagger UI renders Markdown: a bare <key> was taken for an HTML tag and vanished.
    assert "`Authorization: Bearer <key>`" in spec["info"]["description"]


def test_home_points_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    links = response.get_json()["links"]
    assert links["docs"] == "/apidocs/" and client.get(links["docs"]).status_code == 200
    assert client.get(links["openapi"]).get_json()["openapi"].startswith("3.")


def test_health_needs_no_key(client):
    assert client.get("/healthcheck").status_code == 200
    assert client.get("/readiness").status_code == 200
