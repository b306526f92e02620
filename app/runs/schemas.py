"""Marshmallow schemas of the run machinery, reused by every kind of run."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError, fields, post_load, validate

from app.fields import HTTP_URL_PATTERN, FullMatch, JsonObject, StrictFloat, StrictInteger
from app.outbound import policy_for
from app.runs.states import ErrorType, RunState

#: Largest log sequence number a query may name (the column is a 32-bit integer).
MAX_LOG_SEQ = 2**31 - 1


def _reachable(value: str) -> None:
    problem = policy_for(current_app.config["SETTINGS"]).http_url_problem(value)
    if problem:
        raise ValidationError(problem)


def CallbackUrl() -> fields.String:  # noqa: N802 - a field factory
    """Where the end-of-run notice is POSTed: http(s), and only to a reachable host."""
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=[FullMatch(HTTP_URL_PATTERN, error="Not an http or https URL"), _reachable],
        metadata={"description": "POSTed to when the run ends", "example": None},
    )


class StateChangeSchema(Schema):
    state = fields.Enum(RunState, by_value=True)
    from_state = fields.Enum(RunState, by_value=True, allow_none=True)
    attempt = fields.Integer()
    reason = fields.String(allow_none=True)
    at = fields.DateTime()


class ProgressSchema(Schema):
    percent = fields.Float(allow_none=True, metadata={"description": "0-100, or null if unknown"})
    message = fields.String(allow_none=True)
    updated_at = fields.DateTime()


class RunErrorSchema(Schema):
    type = fields.String(metadata={"enum": [e.value for e in ErrorType]})
    message = fields.String()
    details = fields.Dict(
        metadata={"description": "For MODEL_ERROR: file, line and every parsed message"}
    )


class ArtifactSchema(Schema):
    name = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    partial = fields.Boolean(
        metadata={"description": "True when written by a cancelled or timed-out attempt"}
    )
    attempt = fields.Integer()
    url = fields.String(metadata={"description": "Download URL (redirects to the store)"})


class RunFieldsSchema(Schema):
    """Fields every kind of run has."""

    id = fields.String()
    state = fields.Enum(RunState, by_value=True)
    states = fields.List(fields.Nested(StateChangeSchema))
    attempt = fields.Integer(metadata={"description": "1 for the first attempt; 0 before any"})
    max_retries = fields.Integer()
    timeout_seconds = fields.Integer()
    progress = fields.Nested(ProgressSchema, allow_none=True)
    error = fields.Nested(RunErrorSchema, allow_none=True)
    callback_url = fields.String(allow_none=True)
    started_by = fields.Dict(
        allow_none=True,
        metadata={
            "description": "What started the run if not a client's request: a schedule "
            "(`{schedule_id, fire_time}`); null otherwise"
        },
    )
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class RunStateQuerySchema(Schema):
    state = fields.Enum(RunState, by_value=True, metadata={"description": "Only runs in it"})


class LogQuerySchema(Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_LOG_SEQ))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))


class LogLineSchema(Schema):
    seq = fields.Integer()
    attempt = fields.Integer()
    at = fields.DateTime()
    line = fields.String()


class LogPageSchema(Schema):
    lines = fields.List(fields.Nested(LogLineSchema))
    next_after = fields.Integer(metadata={"description": "Pass as `after` to read on"})
    state = fields.Enum(RunState, by_value=True)
    complete = fields.Boolean(
        metadata={"description": "True when the run has ended and every line was returned"}
    )


# --- worker side of the API -------------------------------------------------------------


class ClaimSchema(Schema):
    worker_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    claim_token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "Unique per delivery of the run's task; a repeat of the same "
            "claim returns the same attempt",
            "example": "3f1c2b9e8d7a4c5b",
        },
    )


class ClaimResponseSchema(Schema):
    run_id = fields.String()
    kind = fields.String()
    attempt = fields.Integer()
    next_log_seq = fields.Integer()
    timeout_seconds = fields.Integer()
    lease_seconds = fields.Integer()
    job = fields.Dict()


class AttemptSchema(Schema):
    attempt = StrictInteger(required=True, validate=validate.Range(min=1), metadata={"example": 1})


class ProgressReportSchema(AttemptSchema):
    percent = StrictFloat(
        allow_none=True, validate=validate.Range(min=0, max=100), metadata={"example": 50}
    )
    message = fields.String(allow_none=True, validate=validate.Length(max=2000))


class LeaseStatusSchema(Schema):
    state = fields.Enum(RunState, by_value=True)
    cancel_requested = fields.Boolean()


class LogBatchSchema(AttemptSchema):
    first_seq = StrictInteger(
        required=True, validate=validate.Range(min=1), metadata={"example": 1}
    )
    lines = fields.List(
        fields.String(validate=validate.Length(max=65536)),
        required=True,
        validate=validate.Length(max=10000),
    )


class LogBatchResponseSchema(Schema):
    next_seq = fields.Integer()


class ArtifactUploadQuerySchema(Schema):
    attempt = fields.Integer(required=True, validate=validate.Range(min=1))
    partial = fields.Boolean(load_default=False)


class ReportedErrorSchema(Schema):
    type = fields.Enum(ErrorType, by_value=True, required=True)
    message = fields.String(required=True, validate=validate.Length(max=10000))
    details = JsonObject(
        load_default=None,
        allow_none=True,
        metadata={"description": "For MODEL_ERROR: file, line and every parsed message"},
    )


FINISHED_BY_WORKER = (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED)
FINISH_EXAMPLE = {"attempt": 1, "state": "COMPLETED"}


class FinishSchema(AttemptSchema):
    state = fields.String(
        required=True,
        validate=validate.OneOf([s.value for s in FINISHED_BY_WORKER]),
        metadata={"description": "How the attempt ended"},
    )
    error = fields.Nested(ReportedErrorSchema, load_default=None, allow_none=True)

    @post_load
    def _as_state(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "state": RunState(data["state"])}
