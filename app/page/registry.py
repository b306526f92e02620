"""Kinds of run the page can show. A domain registers its kind; the page names none.

Every run lives in the shared ``runs`` table with its ``kind``, so the runs list and the
generic run routes (live state, logs, artifacts, cancel) need nothing from a domain. What
differs per kind is said here once: the template of its run page, extra context and live
fields (a workflow's DAG), labels for the runs list, and extra actions (re-run, retry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.runs.models import Run


@dataclasses.dataclass(frozen=True)
class Action:
    """A state-changing button of a run page: ``perform`` returns the id of the run to show."""

    label: str
    perform: Callable[[Session, Run], str]
    #: Which runs offer it: e.g. a retry only for a failed run.
    offered: Callable[[Run], bool] = lambda run: True


@dataclasses.dataclass(frozen=True)
class RunKindPage:
    kind: str  # the run's ``kind`` (its polymorphic identity)
    label: str
    template: str
    #: Extra template context for the run's page (its parent, its DAG...).
    context: Callable[[Session, Run], dict[str, Any]] = lambda session, run: {}
    #: Extra fields of the page's live JSON (polled), beside the generic ones.
    live: Callable[[Session, Run], dict[str, Any]] = lambda session, run: {}
    #: A short description of each run of a page of the runs list, one query for them all.
    describe: Callable[[Session, Sequence[str]], Mapping[str, str]] = lambda session, ids: {}
    actions: Mapping[str, Action] = dataclasses.field(default_factory=dict)


def by_parent_name(
    run_model: Any, parent_model: Any, foreign_key: Any
) -> Callable[[Session, Sequence[str]], Mapping[str, str]]:
    """A ``describe`` naming each run after what it runs (its pipeline, workflow, flow
    input): one join for a whole page of the runs list."""

    def describe(session: Session, ids: Sequence[str]) -> Mapping[str, str]:
        rows = session.execute(
            select(run_model.id, parent_model.name)
            .join(parent_model, parent_model.id == foreign_key)
            .where(run_model.id.in_(ids))
        )
        return {run_id: name for run_id, name in rows}

    return describe


_KINDS: dict[str, RunKindPage] = {}


def register(page: RunKindPage) -> None:
    """Make runs of ``page.kind`` viewable; registering a kind twice keeps the last."""
    _KINDS[page.kind] = page


def kinds() -> list[RunKindPage]:
    return sorted(_KINDS.values(), key=lambda page: page.kind)


def for_kind(kind: str) -> RunKindPage | None:
    return _KINDS.get(kind)
