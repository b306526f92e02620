"""HTTP routes of the schedules domain: parse with a schema, call a service or query, dump
with a schema. They need PIPELINES_CLIENT, like every client route."""

from __future__ import annotations

from typing import Any

from flask import url_for

from app.auth.decorators import ClientView
from app.blueprint import Blueprint
from app.extensions import db
from app.openapi import LOCATION
from app.pagination import PageArgsSchema
from app.schedules import queries, services
from app.schedules.models import Schedule
from app.schedules.schemas import ScheduleDetailSchema, SchedulePageSchema, ScheduleSchema

blp = Blueprint(
    "schedules",
    __name__,
    url_prefix="/api/v1.0/schedules",
    description="Schedules: start a pipeline or a workflow on a cron expression or an "
    "interval; changes take effect within seconds.",
)

SCHEDULE_EXAMPLE = {
    "name": "ieee13 every minute",
    "cron": "* * * * *",
    "timezone": "UTC",
    "target": {"type": "pipeline", "id": "<pipeline id>", "run": {"parameters": {"A": 1}}},
    "misfire": "run_once",
}
_SCHEDULE = {"schedule_id": "$response.body#/id"}
SCHEDULE_LINKS = {
    name: {"operationId": name, "parameters": _SCHEDULE}
    for name in ("getSchedule", "replaceSchedule", "deleteSchedule")
}


def _detailed(schedule: Schedule) -> Schedule:
    schedule.fires = queries.recent_fires(db.session, schedule)  # type: ignore[attr-defined]
    return schedule


@blp.route("")
class Schedules(ClientView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, SchedulePageSchema)
    @blp.doc(operationId="listSchedules")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List schedules, newest first."""
        items, cursor = queries.list_schedules(db.session, args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(ScheduleSchema, example=SCHEDULE_EXAMPLE)
    @blp.response(201, ScheduleDetailSchema, headers=LOCATION)
    @blp.doc(operationId="createSchedule", responses={201: {"links": SCHEDULE_LINKS}})
    def post(self, data: dict[str, Any]) -> Any:
        """Create a schedule: a cron expression in a time zone, or an interval, and a target."""
        schedule = services.create_schedule(db.session, data)
        db.session.commit()
        location = url_for(".ScheduleDetail", schedule_id=schedule.id)
        return _detailed(schedule), 201, {"Location": location}


@blp.route("/<schedule_id>")
class ScheduleDetail(ClientView):
    @blp.response(200, ScheduleDetailSchema)
    @blp.doc(operationId="getSchedule")
    def get(self, schedule_id: str) -> Any:
        """Show a schedule, its next fire times and the latest runs it started."""
        return _detailed(queries.get_schedule(db.session, schedule_id))

    @blp.arguments(ScheduleSchema, example=SCHEDULE_EXAMPLE)
    @blp.response(200, ScheduleDetailSchema)
    @blp.doc(operationId="replaceSchedule")
    def put(self, data: dict[str, Any], schedule_id: str) -> Any:
        """Replace a schedule (pause it with `"enabled": false`); in effect within seconds."""
        schedule = services.lock_schedule(db.session, schedule_id)
        services.update_schedule(db.session, schedule, data)
        db.session.commit()
        return _detailed(schedule)

    @blp.response(204)
    @blp.doc(operationId="deleteSchedule")
    def delete(self, schedule_id: str) -> None:
        """Delete a schedule; the runs it started stay with their pipeline or workflow."""
        services.delete_schedule(db.session, services.lock_schedule(db.session, schedule_id))
        db.session.commit()
