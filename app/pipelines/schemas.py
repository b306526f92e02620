"""Marshmallow schemas of the pipelines domain: what clients send and receive."""

from __future__ import annotations

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates

from app.fields import HTTP_URL_PATTERN, URL_HOST, FullMatch, StrictFloat, StrictInteger
from app.filenames import GLM_NAME_PATTERN, MAX_NAME_LENGTH, NAME_PATTERN, name_problem
from app.outbound import OutboundPolicy, policy_for
from app.runs.schemas import ArtifactSchema, AttemptSchema, CallbackUrl, RunFieldsSchema

PARAMETER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$"
PARAMETER_NAME = FullMatch(
    PARAMETER_NAME_PATTERN,
    error="Parameter names start with a letter or '_' and contain letters, digits, '_', '.'",
)
MAX_PARAMETERS = 200

# An s3 URL names a bucket and a key: after the bucket, a path with more than slashes.
# (";" cannot start it: urlparse would read the rest as ";params" of an empty path).
S3_URL_PATTERN = rf'^[Ss]3://{URL_HOST}/+[!"$-.0-:<->@-~][!"$->@-~]*([?#][!-~]*)?$'
INPUT_URL_PATTERN = f"({HTTP_URL_PATTERN})|({S3_URL_PATTERN})"


def _file_name(**kwargs: object) -> dict[str, object]:
    """Spec metadata of a file name field (``_check_name`` applies the same rules)."""
    return {"pattern": NAME_PATTERN, "minLength": 1, "maxLength": MAX_NAME_LENGTH, **kwargs}


def _check_name(value: str) -> None:
    problem = name_problem(value)
    if problem:
        raise ValidationError(f"File name {problem}")


def _check_parameter_count(value: dict) -> None:
    if len(value) > MAX_PARAMETERS:
        raise ValidationError(f"At most {MAX_PARAMETERS} parameters")


def check_parameter_value(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationError("Parameter values must be strings or numbers")
    if isinstance(value, str) and (len(value) > 4096 or any(c in value for c in "\n\r\0")):
        raise ValidationError("Parameter values are one line of at most 4096 characters")


PARAMETER_VALUE_SPEC = {
    "oneOf": [
        {"type": "string", "maxLength": 4096, "pattern": r"^[^\n\r\x00]*$"},
        {"type": "number"},
    ]
}


class Parameters(fields.Dict):
    """``name -> value`` defines passed to GridLAB-D as ``-D name=value``; stored as text."""

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(
            keys=fields.String(validate=PARAMETER_NAME),
            values=fields.Raw(validate=check_parameter_value, metadata=PARAMETER_VALUE_SPEC),
            validate=_check_parameter_count,
            metadata={
                "maxProperties": MAX_PARAMETERS,
                # OpenAPI 3.0 has no propertyNames; the fuzz test reads this extension as it.
                "x_propertyNames": {"pattern": PARAMETER_NAME_PATTERN},
                "description": "Names: a letter or '_', then letters, digits, '_' or '.' (at "
                "most 100). Values: numbers or one line of text.",
                "example": {"SIZE": 3, "MODE": "fast"},
            },
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        result = super()._deserialize(value, attr, data, **kwargs)
        return {k: str(v) for k, v in result.items()}


def _check_timeout(value: int | None) -> None:
    limit = current_app.config["SETTINGS"].MAX_TIMEOUT_SECONDS
    if value is not None and not 1 <= value <= limit:
        raise ValidationError(f"Must be between 1 and {limit} (MAX_TIMEOUT_SECONDS)")


def Timeout(**metadata: object) -> fields.Integer:  # noqa: N802 - a field factory
    """Seconds a run may take before it is stopped and FAILED with TIMEOUT; null: default."""
    return StrictInteger(
        load_default=None,
        allow_none=True,
        validate=_check_timeout,
        metadata={"minimum": 1, "maximum_setting": "MAX_TIMEOUT_SECONDS", **metadata},
    )


class PipelineSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=10000))
    model = fields.String(
        required=True,
        validate=_check_name,
        metadata=_file_name(
            pattern=GLM_NAME_PATTERN,
            description="Entry .glm file, by its uploaded name",
            example="model.glm",
        ),
    )
    parameters = Parameters(load_default=dict)
    timeout_seconds = Timeout(example=600)
    max_retries = StrictInteger(load_default=2, validate=validate.Range(min=0, max=10))
    retry_backoff_seconds = StrictFloat(load_default=10.0, validate=validate.Range(min=0, max=3600))
    files = fields.List(fields.Nested(lambda: PipelineFileSchema()), dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates("model")
    def _model_is_glm(self, value: str, **_: object) -> None:
        if not value.lower().endswith(".glm"):
            raise ValidationError("The model must be a .glm file")


PIPELINE_EXAMPLE = {
    "name": "ieee13",
    "model": "test_IEEE_13_NR.glm",
    "parameters": {"SIZE": 3},
    "timeout_seconds": 600,
}


class PipelineUpdateSchema(PipelineSchema):
    """PUT replaces the definition; files are managed by their own endpoint."""


class PipelineFileSchema(Schema):
    name = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    created_at = fields.DateTime()


class FileNameQuerySchema(Schema):
    name = fields.String(required=True, validate=_check_name, metadata=_file_name())


class PipelinePageSchema(Schema):
    items = fields.List(fields.Nested(PipelineSchema))
    next_cursor = fields.String(allow_none=True)


class PipelineFilePageSchema(Schema):
    items = fields.List(fields.Nested(PipelineFileSchema))
    next_cursor = fields.String(allow_none=True)


class InputSchema(Schema):
    name = fields.String(
        required=True, validate=_check_name, metadata=_file_name(example="weather.tmy2")
    )
    url = fields.String(
        required=True,
        validate=[
            validate.Length(max=4096),
            FullMatch(INPUT_URL_PATTERN, error="Only http, https and s3://bucket/key URLs"),
        ],
        metadata={"example": "https://example.com/weather.tmy2"},
    )

    @validates("url")
    def _allowed_url(self, value: str, **_: object) -> None:
        problem = _outbound_policy().input_url_problem(value)
        if problem:
            raise ValidationError(problem)


def _outbound_policy() -> OutboundPolicy:
    return policy_for(current_app.config["SETTINGS"])


def UrlInputs() -> fields.List:  # noqa: N802 - a field factory
    """Inputs a run fetches by URL into its job folder; a schema with them inherits
    ``UniqueInputNames``."""
    return fields.List(
        fields.Nested(InputSchema),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={
            "example": [],
            "description": "Files fetched into the job folder first; names are unique",
            "x_uniqueItemsBy": "name",
        },
    )


class UniqueInputNames(Schema):
    """Refuses two ``inputs`` of one name, reported beside any error of the items."""

    @validates("inputs")  # JSON Schema cannot say it: x-uniqueItemsBy in the spec
    def _unique_names(self, value: list[dict], **_: object) -> None:
        names = [item.get("name") for item in value if isinstance(item, dict)]
        if len(names) != len(set(names)):
            raise ValidationError("Input names must be unique")


class RunCreateSchema(UniqueInputNames):
    inputs = UrlInputs()
    parameters = Parameters(load_default=dict)
    callback_url = CallbackUrl()
    timeout_seconds = Timeout(
        description="Overrides the pipeline's timeout for this run", example=None
    )


class PipelineRunSchema(RunFieldsSchema):
    pipeline_id = fields.String()
    inputs = fields.List(fields.Nested(InputSchema))
    parameters = fields.Dict(keys=fields.String(), values=fields.String())
    unused_parameters = fields.List(
        fields.String(),
        allow_none=True,
        metadata={
            "description": "Parameters that have no effect: the model never reads them (no "
            "${NAME}, #ifdef NAME or #ifndef NAME in its .glm files) and they are not GridLAB-D "
            "globals. Filled in when the worker has read the model; the log warns too."
        },
    )
    artifacts = fields.List(fields.Nested(ArtifactSchema))


class PipelineRunPageSchema(Schema):
    items = fields.List(fields.Nested(PipelineRunSchema))
    next_cursor = fields.String(allow_none=True)


class UnusedParametersSchema(AttemptSchema):
    """Worker side: the run's parameters its model never reads."""

    names = fields.List(
        fields.String(validate=PARAMETER_NAME), required=True, validate=validate.Length(max=200)
    )
