"""Workflows as targets of schedules: a schedule starts a workflow run as
``POST /workflows/{id}/runs`` with its body would (app/schedules/targets.py)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ErrorCode, NotFound, ValidationFailed
from app.schedules.services import refuse_if_scheduled
from app.schedules.targets import register_target
from app.workflows import queries, services
from app.workflows.models import Workflow, WorkflowRun
from app.workflows.schemas import WorkflowRunCreateSchema


class WorkflowTarget:
    type = "workflow"
    in_use_code = ErrorCode.WORKFLOW_IN_USE

    def run_schema(self) -> Schema:
        return WorkflowRunCreateSchema()

    def check(self, session: Session, target_id: str, body: dict[str, Any]) -> None:
        try:
            workflow = queries.get_workflow(session, target_id)
        except NotFound:
            raise ValidationFailed(
                f"No workflow {target_id}", {"target": {"id": [f"No workflow {target_id}"]}}
            ) from None
        errors = services.unknown_nodes(workflow, body)
        if errors:
            raise ValidationFailed(
                "target.run names nodes the workflow lacks", {"target": {"run": errors}}
            )

    def start(
        self, session: Session, target_id: str, body: dict[str, Any], settings: Settings
    ) -> WorkflowRun:
        workflow = queries.get_workflow(session, target_id)
        return services.create_run(session, workflow, body, settings)

    def run_url(self, target_id: str, run_id: str) -> str:
        return f"/api/v1.0/workflows/{target_id}/runs/{run_id}"


TARGET = WorkflowTarget()
register_target(TARGET)


@services.workflow_deleting.connect
def _refuse_scheduled_delete(workflow: Workflow, session: Session, **_: Any) -> None:
    refuse_if_scheduled(session, TARGET, workflow.id)
