"""Marshmallow schemas of the jobs domain: kinds, and what job runs take and show."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.fields import FullMatch, JsonObject
from app.jobkit.kind import KIND_NAME_PATTERN
from app.pipelines.schemas import InputSchema, Timeout, UniqueInputNames, UrlInputs
from app.runs.schemas import ArtifactSchema, CallbackUrl, RunFieldsSchema


class JobKindSchema(Schema):
    name = fields.String(metadata={"pattern": KIND_NAME_PATTERN})
    title = fields.String()
    description = fields.String()
    parameters = fields.Dict(
        metadata={"description": "JSON Schema of the run's `parameters` (from the kind's schema)"}
    )
    timeout_seconds = fields.Integer(
        allow_none=True, metadata={"description": "Default timeout; null: DEFAULT_TIMEOUT_SECONDS"}
    )
    max_retries = fields.Integer(metadata={"description": "Retries after a lost worker"})
    queue = fields.String(metadata={"description": "The Celery queue its runs are sent to"})
    workers = fields.Integer(
        metadata={"description": "Workers that announced this kind recently; 0: runs wait"}
    )


class JobKindListSchema(Schema):
    items = fields.List(fields.Nested(JobKindSchema))


class JobRunCreateSchema(UniqueInputNames):
    parameters = JsonObject(
        load_default=dict,
        metadata={"description": "Checked against the kind's parameter schema (GET the kind)"},
    )
    inputs = UrlInputs()
    callback_url = CallbackUrl()
    timeout_seconds = Timeout(description="Overrides the kind's timeout for this run", example=None)


class JobRunSchema(RunFieldsSchema):
    job_kind = fields.String()
    parameters = fields.Dict()
    inputs = fields.List(fields.Nested(InputSchema))
    queue = fields.String()
    waiting_reason = fields.String(
        allow_none=True,
        metadata={"description": "Why a READY run has not started (no worker runs its kind)"},
    )
    artifacts = fields.List(fields.Nested(ArtifactSchema))


class JobRunPageSchema(Schema):
    items = fields.List(fields.Nested(JobRunSchema))
    next_cursor = fields.String(allow_none=True)


class KindAnnouncementSchema(Schema):
    """Worker side: the kinds a worker runs."""

    worker_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kinds = fields.List(
        fields.String(validate=FullMatch(KIND_NAME_PATTERN)),
        required=True,
        validate=validate.Length(max=1000),
    )
