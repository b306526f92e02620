"""Flow inputs as targets of schedules: a schedule starts a flow as ``POST /flows`` with
``flow_input_id`` and its body would (app/schedules/targets.py)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ErrorCode, ValidationFailed
from app.flows import services
from app.flows.models import FlowInput, FlowRun
from app.flows.schemas import FlowCreateSchema
from app.schedules.targets import register_target


class FlowInputTarget:
    type = "flow_input"
    # Flow inputs are immutable and never deleted through the API: no delete to refuse.
    in_use_code = ErrorCode.CONFLICT

    def run_schema(self) -> Schema:
        return FlowCreateSchema(exclude=("flow_input_id",))  # the target names it

    def check(self, session: Session, target_id: str, body: dict[str, Any]) -> None:
        if session.get(FlowInput, target_id) is None:
            message = f"No flow input {target_id}"
            raise ValidationFailed(message, {"target": {"id": [message]}})

    def start(
        self, session: Session, target_id: str, body: dict[str, Any], settings: Settings
    ) -> FlowRun:
        return services.create_run(session, {**body, "flow_input_id": target_id})

    def run_url(self, target_id: str, run_id: str) -> str:
        return f"/api/v1.0/flows/{run_id}"


register_target(FlowInputTarget())
