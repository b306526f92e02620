"""Marshmallow schemas of the schedules domain."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from app.fields import FullMatch, JsonObject, StrictBoolean, StrictInteger
from app.schedules.models import Misfire
from app.schedules.targets import target_types
from app.schedules.timing import CRON_PATTERN, ZONE_PATTERN, cron_problem, zone_problem

MAX_INTERVAL_SECONDS = 366 * 24 * 3600


class TargetSchema(Schema):
    type = fields.String(
        required=True,
        metadata={"enum_of": target_types, "description": "What to run", "example": "pipeline"},
    )
    id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=36),
        metadata={"description": "The pipeline's or workflow's id"},
    )
    run = JsonObject(
        load_default=dict,
        metadata={
            "description": "The body of the target's create-run request (a pipeline's: "
            "`parameters`, `inputs`, `timeout_seconds`, `callback_url`; a workflow's: "
            "per-node `parameters` and `inputs`, ...), checked as that request checks it",
            "example": {"parameters": {"LOAD_SCALE": "1.2"}},
        },
    )


def _check_interval(value: int | None) -> None:
    least = current_app.config["SETTINGS"].SCHEDULE_MIN_INTERVAL_SECONDS
    if value is not None and not least <= value <= MAX_INTERVAL_SECONDS:
        raise ValidationError(
            f"Must be between {least} (SCHEDULE_MIN_INTERVAL_SECONDS) and {MAX_INTERVAL_SECONDS}"
        )


class FireSchema(Schema):
    fire_time = fields.DateTime()
    outcome = fields.String(
        metadata={"enum": ["STARTED", "FAILED", "SKIPPED"], "description": "What happened"}
    )
    fire_count = fields.Integer(
        metadata={"description": "Fire times this stands for (missed ones coalesced)"}
    )
    message = fields.String(allow_none=True)
    run_id = fields.String(allow_none=True)
    run_state = fields.String(allow_none=True)
    run_url = fields.String(allow_none=True)
    handled_at = fields.DateTime()


class ScheduleSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=10000))
    cron = fields.String(
        load_default=None,
        allow_none=True,
        validate=FullMatch(CRON_PATTERN, error="Not a five-field cron expression"),
        metadata={
            "description": "minute hour day-of-month month day-of-week, or @hourly, @daily, "
            "@weekly, @monthly, @yearly; in `timezone`. Give this or `interval_seconds`.",
            "example": "*/15 6-18 * * MON-FRI",
        },
    )
    timezone = fields.String(
        load_default="UTC",
        validate=FullMatch(ZONE_PATTERN, error="Not an IANA time zone name"),
        metadata={"description": "IANA zone of the cron expression", "example": "Europe/Paris"},
    )
    interval_seconds = StrictInteger(
        load_default=None,
        allow_none=True,
        validate=_check_interval,
        metadata={
            "minimum_setting": "SCHEDULE_MIN_INTERVAL_SECONDS",
            "maximum": MAX_INTERVAL_SECONDS,
            "description": "Fire every this many seconds (absolute time), the first one "
            "interval after the schedule is created, retimed or resumed",
            "example": None,
        },
    )
    target = fields.Nested(TargetSchema, required=True)
    enabled = StrictBoolean(
        load_default=True, metadata={"description": "false pauses the schedule"}
    )
    misfire = fields.Enum(
        Misfire,
        by_value=True,
        load_default=Misfire.RUN_ONCE,
        metadata={
            "description": "For fire times missed while no scheduler ran (older than "
            "SCHEDULE_MISFIRE_GRACE_SECONDS): `skip` them, or `run_once` for all of them"
        },
    )
    timing_description = fields.String(
        dump_only=True, metadata={"description": "The timing in words"}
    )
    next_fire_times = fields.List(
        fields.DateTime(),
        dump_only=True,
        metadata={"description": "The next fire times (UTC); empty while paused"},
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates("cron")
    def _cron(self, value: str | None, **_: Any) -> None:
        problem = value and cron_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates("timezone")
    def _zone(self, value: str, **_: Any) -> None:
        problem = zone_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates_schema
    def _one_timing(self, data: dict[str, Any], **_: Any) -> None:
        has_cron, has_interval = data.get("cron") is not None, data.get("interval_seconds")
        if has_cron and has_interval is not None:
            raise ValidationError("Give cron or interval_seconds, not both", "cron")
        if not has_cron and has_interval is None:
            raise ValidationError("Give a cron expression or interval_seconds", "cron")


class ScheduleDetailSchema(ScheduleSchema):
    fires = fields.List(
        fields.Nested(FireSchema),
        dump_only=True,
        metadata={"description": "The latest fire times handled and the runs they started"},
    )


class SchedulePageSchema(Schema):
    items = fields.List(fields.Nested(ScheduleSchema))
    next_cursor = fields.String(allow_none=True)
