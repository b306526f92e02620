"""Marshmallow schemas of the flows domain: data stores, flow inputs and flow runs."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.fields import FullMatch, StrictBoolean, StrictFloat, StrictInteger
from app.flows.models import ENGINES_OF_TYPE, SERVER_ENGINES, Engine, StoreType
from app.pipelines.schemas import Timeout
from app.runs.schemas import ArtifactSchema, AttemptSchema, CallbackUrl, RunFieldsSchema

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
NAME = FullMatch(
    NAME_PATTERN,
    error="Names start with a letter or '_' and contain letters, digits and '_' (at most 63)",
)
TABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$"
FILE_PATTERN = r"^[A-Za-z0-9_*?\[\]-][A-Za-z0-9_.*?\[\]/-]{0,254}$"
MAX_SQL = 100_000
CHECK_TYPES = ("not_null", "unique", "accepted_values", "row_count")


def _no_dotdot(value: str) -> None:
    if ".." in value.split("/"):
        raise ValidationError("A pattern cannot contain '..'")


class DataStoreSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.Enum(StoreType, by_value=True, required=True)
    engine = fields.Enum(
        Engine,
        by_value=True,
        required=True,
        metadata={
            "description": "RELATIONAL: postgresql, mysql (MariaDB too), sqlite; "
            "COLUMNAR: duckdb; FILE: csv"
        },
    )
    host = fields.String(
        load_default=None, allow_none=True, validate=FullMatch(r"^[A-Za-z0-9._:-]{1,255}$")
    )
    port = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(1, 65535))
    user = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    password = fields.String(
        load_only=True,
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={"description": "Encrypted at rest; never returned"},
    )
    database = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200)
    )
    path = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=1000),
        metadata={
            "description": "File engines: a path inside FLOWS_DATA_ROOT (relative paths are "
            "under it), or s3://bucket/prefix/ for csv in an allowed bucket"
        },
    )
    has_password = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates_schema
    def _fits_engine(self, data: dict[str, Any], **_: Any) -> None:
        store_type, engine = data.get("type"), data.get("engine")
        if store_type is None or engine is None:
            return
        if engine not in ENGINES_OF_TYPE[store_type]:
            allowed = ", ".join(e.value for e in ENGINES_OF_TYPE[store_type])
            raise ValidationError(f"A {store_type.value} store takes: {allowed}", "engine")
        if engine in SERVER_ENGINES:
            if not data.get("host"):
                raise ValidationError(f"A {engine.value} store needs a host", "host")
            if not data.get("database"):
                raise ValidationError(f"A {engine.value} store needs a database", "database")
            if data.get("path"):
                raise ValidationError("A database server has no path", "path")
        else:
            if not data.get("path"):
                raise ValidationError(f"A {engine.value} store needs a path", "path")
            for field in ("host", "port", "user", "password", "database"):
                if data.get(field) is not None:
                    raise ValidationError(f"A {engine.value} store has no {field}", field)


class DataStorePageSchema(Schema):
    items = fields.List(fields.Nested(DataStoreSchema))
    next_cursor = fields.String(allow_none=True)


class StoreTestSchema(Schema):
    ok = fields.Boolean()
    tables = fields.List(fields.String(), metadata={"description": "Tables or CSV files"})


class SourceTableSchema(Schema):
    table = fields.String(
        required=True,
        validate=FullMatch(TABLE_PATTERN, error="A table name, optionally schema.table"),
    )
    name = fields.String(
        load_default=None,
        allow_none=True,
        validate=NAME,
        metadata={"description": "Name in the flow's SQL (default: the table's own name)"},
    )


class SourceFileSchema(Schema):
    name = fields.String(required=True, validate=NAME, metadata={"description": "Table name"})
    pattern = fields.String(
        required=True,
        validate=[
            FullMatch(FILE_PATTERN, error="A relative glob such as readings_*.csv"),
            _no_dotdot,
        ],
        metadata={"example": "readings_*.csv"},
    )


class SourceSchema(Schema):
    store_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    tables = fields.List(
        fields.Nested(SourceTableSchema), load_default=list, validate=validate.Length(max=200)
    )
    files = fields.List(
        fields.Nested(SourceFileSchema), load_default=list, validate=validate.Length(max=200)
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("tables") and not data.get("files"):
            raise ValidationError("Name tables (database stores) or files (csv stores)", "tables")


class TransformSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    sql = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_SQL),
        metadata={"description": "One SELECT in DuckDB's dialect", "example": "SELECT 1 AS x"},
    )
    persist = StrictBoolean(load_default=False, metadata={"description": "Publish to the target"})


class CheckSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(CHECK_TYPES))
    table = fields.String(required=True, validate=NAME)
    column = fields.String(load_default=None, allow_none=True, validate=NAME)
    columns = fields.List(
        fields.String(validate=NAME),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=20),
    )
    values = fields.List(
        fields.Raw(), load_default=None, allow_none=True, validate=validate.Length(min=1, max=1000)
    )
    min = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=0))
    max = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=0))

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("type")
        if kind in ("not_null", "accepted_values") and not data.get("column"):
            raise ValidationError(f"A {kind} check names a column", "column")
        if kind == "unique" and not (data.get("column") or data.get("columns")):
            raise ValidationError("A unique check names a column or columns", "column")
        if kind == "accepted_values":
            values = data.get("values") or []
            if not values or any(
                isinstance(v, bool) or not isinstance(v, (str, int, float)) for v in values
            ):
                raise ValidationError("A list of strings or numbers", "values")
        if kind == "row_count" and data.get("min") is None and data.get("max") is None:
            raise ValidationError("A row_count check sets min, max or both", "min")


class FlowInputSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    sources = fields.List(
        fields.Nested(SourceSchema), required=True, validate=validate.Length(min=1, max=50)
    )
    target_store_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    transforms = fields.List(
        fields.Nested(TransformSchema), required=True, validate=validate.Length(min=1, max=200)
    )
    checks = fields.List(
        fields.Nested(CheckSchema), load_default=list, validate=validate.Length(max=500)
    )
    timeout_seconds = Timeout()
    graph = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        dump_only=True,
        metadata={"description": "Derived from the SQL: the transforms each transform reads"},
    )
    order = fields.List(fields.String(), dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class FlowInputPageSchema(Schema):
    items = fields.List(fields.Nested(FlowInputSchema))
    next_cursor = fields.String(allow_none=True)


class FlowCreateSchema(Schema):
    flow_input_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    callback_url = CallbackUrl()


STEP_KINDS = ("ingest", "transform", "check", "publish")
STEP_STATES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED")


class StepSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(max=200))
    kind = fields.String(required=True, validate=validate.OneOf(STEP_KINDS))
    state = fields.String(required=True, validate=validate.OneOf(STEP_STATES))
    rows = StrictInteger(load_default=None, allow_none=True)
    seconds = StrictFloat(load_default=None, allow_none=True)
    message = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class FlowRunSchema(RunFieldsSchema):
    flow_input_id = fields.String()
    steps = fields.List(fields.Nested(StepSchema))
    artifacts = fields.List(fields.Nested(ArtifactSchema))


class FlowRunPageSchema(Schema):
    items = fields.List(fields.Nested(FlowRunSchema))
    next_cursor = fields.String(allow_none=True)


class StepsReportSchema(AttemptSchema):
    steps = fields.List(
        fields.Nested(StepSchema), required=True, validate=validate.Length(max=2000)
    )
