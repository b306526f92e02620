"""What a person can start or make from the page. A domain registers; the page names none.

The start page (``/page/start``) is built from two registries, filled by each domain's
``page.py`` beside its ``RunKindPage``:

- a **Starter** starts a run of something picked from a list (a pipeline, a workflow, a
  job kind, a flow input), with form fields loaded through the schema of the API's own
  create-run request, so the page refuses exactly what the API refuses;
- a **Maker** makes something a start needs (a pipeline, its files); what cannot be made
  here is made with the API and then appears in a starter's list.

The page only reads forms, loads them through ``schema`` and calls ``start``/``make``: the
domain's services do the work, as they do for its API routes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from marshmallow import Schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.runs.models import Run

#: text: one line; number: a whole number; mapping: a JSON object or KEY=VALUE lines;
#: json: any JSON value; files: rows of a file and the relative name to store it under.
FieldKind = Literal["text", "number", "mapping", "json", "files"]


@dataclasses.dataclass(frozen=True)
class Field:
    name: str  # the form's field, and the body's: errors of the schema name it
    label: str
    kind: FieldKind = "text"
    help: str = ""
    placeholder: str = ""
    required: bool = False


@dataclasses.dataclass(frozen=True)
class Pick:
    """The thing a form acts on, chosen from a list, newest first."""

    #: Its form field, named as the domain's errors name it (``pipeline_id``), so a
    #: "not found" from the service is shown beside the list.
    field: str
    label: str
    #: ``(id, label)`` of each thing to offer (the newest ``LIST_SIZE``).
    choices: Callable[[Session, int], Sequence[tuple[str, str]]]
    #: Said when the list is empty: how to make one (here, or with the API).
    empty: str = ""


@dataclasses.dataclass(frozen=True)
class Made:
    """What a maker made: a notice, and the picks to preselect on the start page."""

    notice: str
    select: Mapping[str, str] = dataclasses.field(default_factory=dict)
    anchor: str = ""  # the form to show next (``make-pipeline-files``)


@dataclasses.dataclass(frozen=True)
class Starter:
    name: str  # in the URL and the form's id: ``pipeline``
    label: str
    pick: Pick
    #: The API's create-run schema; the fields' values (blank ones left out) are its body.
    schema: Callable[[], Schema]
    #: Create the run from the loaded body through the domain's services (flush, never
    #: commit); raise a DomainError naming the field when it cannot start.
    start: Callable[[Session, str, dict[str, Any]], Run]
    fields: Sequence[Field] = ()
    help: str = ""
    #: Place on the page, lowest first (the things most people start first).
    order: int = 100


@dataclasses.dataclass(frozen=True)
class Maker:
    name: str
    label: str
    #: Make it and commit (the domain knows what must follow the commit); raise a
    #: DomainError naming the field when it cannot. Gets the picked id (or None) and the
    #: fields' values, loaded through ``schema`` if there is one; ``files`` fields come as
    #: ``(name, stream)`` pairs with their names checked.
    make: Callable[[Session, str | None, dict[str, Any]], Made]
    fields: Sequence[Field] = ()
    pick: Pick | None = None
    schema: Callable[[], Schema] | None = None
    help: str = ""
    order: int = 100
    button: str = "Create"


LIST_SIZE = 200


def newest_by_name(model: Any) -> Callable[[Session, int], list[tuple[str, str]]]:
    """``choices`` of a model with ``id``, ``name`` and ``created_at``: the newest, by name
    (only those two columns: a list needs no documents)."""

    def choices(session: Session, limit: int) -> list[tuple[str, str]]:
        rows = session.execute(
            select(model.id, model.name)
            .order_by(model.created_at.desc(), model.id.desc())
            .limit(limit)
        )
        return [(id_, name) for id_, name in rows]

    return choices


_STARTERS: dict[str, Starter] = {}
_MAKERS: dict[str, Maker] = {}


def register_starter(starter: Starter) -> None:
    """Offer ``starter`` on the start page; registering a name twice keeps the last."""
    _STARTERS[starter.name] = starter


def register_maker(maker: Maker) -> None:
    _MAKERS[maker.name] = maker


def starters() -> list[Starter]:
    return sorted(_STARTERS.values(), key=lambda item: (item.order, item.name))


def makers() -> list[Maker]:
    return sorted(_MAKERS.values(), key=lambda item: (item.order, item.name))


def starter(name: str) -> Starter | None:
    return _STARTERS.get(name)


def maker(name: str) -> Maker | None:
    return _MAKERS.get(name)
