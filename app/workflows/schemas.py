"""Marshmallow schemas of the workflows domain: the DAG document and workflow runs."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from app.fields import FullMatch, StrictBoolean
from app.jobkit.kind import KIND_NAME_PATTERN
from app.pipelines.schemas import (
    PARAMETER_NAME,
    PARAMETER_NAME_PATTERN,
    PARAMETER_VALUE_SPEC,
    InputSchema,
    Parameters,
    Timeout,
    _check_name,
    check_parameter_value,
)
from app.runs.schemas import CallbackUrl, ProgressSchema, RunErrorSchema, RunFieldsSchema
from app.workflows import dag

TARGETS = ("pipeline_id", "job_kind")  # what a node runs: exactly one of them
NODE_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
NODE_NAME = FullMatch(
    NODE_NAME_PATTERN,
    error="Node names start with a letter, digit or '_' and contain letters, digits, "
    "'_', '.', '-' (at most 100)",
)


def _per_node(description: str) -> dict[str, Any]:
    """Spec metadata of an object keyed by node name (OpenAPI 3.0 has no propertyNames; the
    fuzz test reads the extension as it)."""
    return {"x_propertyNames": {"pattern": NODE_NAME_PATTERN}, "description": description}


class FromSchema(Schema):
    node = fields.String(required=True, validate=NODE_NAME)
    artifact = fields.String(required=True, validate=_check_name)


class NodeInputSchema(Schema):
    name = fields.String(required=True, validate=_check_name)
    from_ = fields.Nested(FromSchema, required=True, data_key="from")

    @post_load
    def _rename(self, data: dict[str, Any], **_: object) -> dict[str, Any]:
        data["from"] = data.pop("from_")
        return data


class SweepValues(fields.List):
    """A sweep key's values, stored as text like every parameter."""

    def __init__(self) -> None:
        super().__init__(
            fields.Raw(validate=check_parameter_value, metadata=PARAMETER_VALUE_SPEC),
            validate=validate.Length(min=1, max=100),
        )

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        return [str(item) for item in super()._deserialize(value, attr, data, **kwargs)]


class NodeSchema(Schema):
    name = fields.String(required=True, validate=NODE_NAME)
    pipeline_id = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=36),
        metadata={"description": "The pipeline the node runs (or give job_kind)"},
    )
    job_kind = fields.String(
        load_default=None,
        validate=FullMatch(KIND_NAME_PATTERN),
        metadata={"description": "The Python job kind the node runs (or give pipeline_id)"},
    )
    parameters = Parameters(load_default=dict)
    inputs = fields.List(
        fields.Nested(NodeInputSchema), load_default=list, validate=validate.Length(max=100)
    )
    depends_on = fields.List(
        fields.String(validate=NODE_NAME),
        load_default=list,
        validate=validate.Length(max=1000),
    )
    trigger = fields.String(
        load_default=dag.ALL_SUCCESS, validate=validate.OneOf([dag.ALL_SUCCESS, dag.ALL_DONE])
    )
    sweep = fields.Dict(
        keys=fields.String(validate=PARAMETER_NAME),
        values=SweepValues(),
        load_default=dict,
        validate=validate.Length(max=10),
        metadata={
            "maxProperties": 10,
            "x_propertyNames": {"pattern": PARAMETER_NAME_PATTERN},
            "description": "Parameter name -> values: the node runs once per combination",
        },
    )

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: object) -> None:
        if (data.get("pipeline_id") is None) == (data.get("job_kind") is None):
            raise ValidationError(
                "Give exactly one of pipeline_id and job_kind", field_name="pipeline_id"
            )

    @post_load
    def _drop_absent_target(self, data: dict[str, Any], **_: object) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k not in TARGETS or v is not None}

    @validates_schema
    def _bounded_sweep(self, data: dict[str, Any], **_: object) -> None:
        if dag.instance_count(data) > dag.MAX_INSTANCES:
            raise ValidationError(
                f"A sweep makes at most {dag.MAX_INSTANCES} runs", field_name="sweep"
            )


class WorkflowSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=10000))
    fail_fast = StrictBoolean(
        load_default=False,
        metadata={"description": "Cancel the rest of a run at its first failed node"},
    )
    nodes = fields.List(
        fields.Nested(NodeSchema), required=True, validate=validate.Length(min=1, max=2000)
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class WorkflowPageSchema(Schema):
    items = fields.List(fields.Nested(WorkflowSchema))
    next_cursor = fields.String(allow_none=True)


class WorkflowRunCreateSchema(Schema):
    parameters = fields.Dict(
        keys=fields.String(validate=NODE_NAME),
        values=Parameters(),
        load_default=dict,
        metadata=_per_node("Per node name: parameters overriding the node's"),
    )
    inputs = fields.Dict(
        keys=fields.String(validate=NODE_NAME),
        values=fields.List(fields.Nested(InputSchema), validate=validate.Length(max=100)),
        load_default=dict,
        metadata=_per_node("Per node name: inputs fetched by URL, as for a pipeline run"),
    )
    timeout_seconds = Timeout(
        metadata={"description": "The whole workflow run's time limit (nodes keep theirs)"}
    )
    callback_url = CallbackUrl()


class NodeInstanceSchema(Schema):
    index = fields.Integer()
    sweep = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String(
        metadata={"description": "WAITING, SKIPPED, or the state of its pipeline run"}
    )
    run_id = fields.String(allow_none=True)
    reused = fields.Boolean(metadata={"description": "Kept from the run this one retried"})
    progress = fields.Float(allow_none=True)
    reason = fields.String(allow_none=True)
    error = fields.Nested(RunErrorSchema, allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class NodeStateSchema(Schema):
    name = fields.String()
    pipeline_id = fields.String(allow_none=True)
    job_kind = fields.String(allow_none=True)
    trigger = fields.String()
    upstream = fields.List(fields.String())
    state = fields.String()
    run_ids = fields.List(fields.String())
    instances = fields.List(fields.Nested(NodeInstanceSchema))


class Prebuilt(fields.Nested):
    """Documented as its nested schema; the value is already built in that shape (JSON-ready)
    by the query, because dumping thousands of node instances field by field is slow."""

    def _serialize(self, value, attr, obj, **kwargs):  # type: ignore[no-untyped-def]
        return value


class WorkflowRunSchema(RunFieldsSchema):
    progress = fields.Nested(
        ProgressSchema,
        attribute="live_progress",
        metadata={"description": "Node runs ended over node runs, running ones' percent folded in"},
    )
    workflow_id = fields.String()
    retry_of = fields.String(allow_none=True)
    fail_fast = fields.Boolean()
    parameters = fields.Dict(attribute="node_parameters")
    inputs = fields.Dict(attribute="node_inputs")
    nodes = Prebuilt(NodeStateSchema, many=True)


class WorkflowRunSummarySchema(WorkflowRunSchema):
    """A run in a list: without its nodes (GET the run for those)."""

    progress = fields.Nested(ProgressSchema, allow_none=True)

    class Meta:
        exclude = ("nodes",)


class WorkflowRunPageSchema(Schema):
    items = fields.List(fields.Nested(WorkflowRunSummarySchema))
    next_cursor = fields.String(allow_none=True)
