"""Runs driven by their children: a workflow run has no worker of its own; its nodes are
ordinary runs whose ``parent_run_id`` names it.

A parent kind registers a ``ParentPolicy``. The machinery calls it, never the other way
round, so this package names no domain:

- ``child_ended`` inside the transaction that ends a child, with the parent row locked
  (child first, then parent: the one lock order everywhere), so decisions such as "start
  the join node" are made exactly once however many children end together;
- ``reconcile`` when the parent is cancelled and from the sweeper, to decide anything an
  interrupted process left undecided.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.runs.models import Run


class ParentPolicy(Protocol):
    def child_ended(self, session: Session, parent: Run, child: Run) -> None:
        """React to ``child`` reaching a final state (flush, do not commit)."""

    def reconcile(self, session: Session, parent: Run) -> None:
        """Bring ``parent`` up to date with its children (idempotent)."""


_POLICIES: dict[str, ParentPolicy] = {}


def register_parent_kind(kind: str, policy: ParentPolicy) -> None:
    _POLICIES[kind] = policy


def policy_for(kind: str) -> ParentPolicy | None:
    return _POLICIES.get(kind)


def parent_kinds() -> list[str]:
    return list(_POLICIES)
