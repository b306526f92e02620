"""Python job kinds as targets of schedules: a schedule starts a job run as
``POST /job-kinds/{kind}/runs`` with its body would (app/schedules/targets.py). The
target's ``id`` is the kind's name."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ErrorCode, NotFound, ValidationFailed
from app.jobs import kinds, services
from app.jobs.models import JobRun
from app.jobs.schemas import JobRunCreateSchema
from app.schedules.targets import register_target


class JobKindTarget:
    type = "job_kind"
    # Kinds are installed code, not deleted through the API: no delete to refuse.
    in_use_code = ErrorCode.CONFLICT

    def run_schema(self) -> Schema:
        return JobRunCreateSchema()

    def check(self, session: Session, target_id: str, body: dict[str, Any]) -> None:
        try:
            kind = kinds.get_kind(target_id)
        except NotFound as exc:
            raise ValidationFailed(exc.message, {"target": {"id": exc.errors["kind"]}}) from None
        services.check_parameters(kind, body.get("parameters", {}), "target.run.parameters")

    def start(
        self, session: Session, target_id: str, body: dict[str, Any], settings: Settings
    ) -> JobRun:
        # NotFound once uninstalled: the fire fails, named.
        return services.start_run(session, target_id, body, settings, "target.run.parameters")

    def run_url(self, target_id: str, run_id: str) -> str:
        return f"/api/v1.0/job-kinds/{target_id}/runs/{run_id}"


register_target(JobKindTarget())
