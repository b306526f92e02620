"""What a schedule can start: a registry that each domain fills, so this package names none.

A domain whose things can be run on a schedule (pipelines, workflows; later flow inputs and
Python job kinds) registers a ``ScheduleTarget`` under a type name when it is imported. The
schedules domain validates a schedule's target and starts its runs only through this
protocol, so dependencies run one way: domains -> schedules -> runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from app.errors import ErrorCode

if TYPE_CHECKING:
    from marshmallow import Schema
    from sqlalchemy.orm import Session

    from app.config import Settings
    from app.runs.models import Run


class ScheduleTarget(Protocol):
    #: The name clients give as ``target.type``.
    type: str
    #: The 409 code of a delete refused because a schedule targets the thing.
    in_use_code: ErrorCode

    def run_schema(self) -> Schema:
        """The schema of the body its create-run request takes (``target.run``)."""

    def check(self, session: Session, target_id: str, body: dict[str, Any]) -> None:
        """Raise ValidationFailed (naming ``id`` or the body's field) if the target does not
        exist or ``body`` (already loaded with ``run_schema``) cannot start it."""

    def start(
        self, session: Session, target_id: str, body: dict[str, Any], settings: Settings
    ) -> Run:
        """Create its run as a client's create-run request would (flush, never commit).
        Raise a DomainError when it cannot start (the fire is recorded as failed)."""

    def run_url(self, target_id: str, run_id: str) -> str:
        """The API path of a run it started."""


_TARGETS: dict[str, ScheduleTarget] = {}


def register_target(target: ScheduleTarget) -> None:
    _TARGETS[target.type] = target


def target_for(type_: str) -> ScheduleTarget | None:
    return _TARGETS.get(type_)


def target_types() -> list[str]:
    return sorted(_TARGETS)
