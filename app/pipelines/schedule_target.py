"""Pipelines as targets of schedules: a schedule starts a pipeline run as
``POST /pipelines/{id}/runs`` with its body would (app/schedules/targets.py)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ErrorCode, NotFound, ValidationFailed
from app.pipelines import queries, services
from app.pipelines.models import Pipeline, PipelineRun
from app.pipelines.schemas import RunCreateSchema
from app.schedules.services import refuse_if_scheduled
from app.schedules.targets import register_target


class PipelineTarget:
    type = "pipeline"
    in_use_code = ErrorCode.PIPELINE_IN_USE

    def run_schema(self) -> Schema:
        return RunCreateSchema()

    def check(self, session: Session, target_id: str, body: dict[str, Any]) -> None:
        try:
            queries.get_pipeline(session, target_id)
        except NotFound:
            raise ValidationFailed(
                f"No pipeline {target_id}", {"target": {"id": [f"No pipeline {target_id}"]}}
            ) from None

    def start(
        self, session: Session, target_id: str, body: dict[str, Any], settings: Settings
    ) -> PipelineRun:
        pipeline = services.lock_pipeline(session, target_id, shared=True)
        services.check_model_uploaded(pipeline)
        return services.create_run(session, pipeline, body)

    def run_url(self, target_id: str, run_id: str) -> str:
        return f"/api/v1.0/pipelines/{target_id}/runs/{run_id}"


TARGET = PipelineTarget()
register_target(TARGET)


@services.pipeline_deleting.connect
def _refuse_scheduled_delete(pipeline: Pipeline, session: Session, **_: Any) -> None:
    refuse_if_scheduled(session, TARGET, pipeline.id)
