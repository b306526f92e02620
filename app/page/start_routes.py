"""The start page: make what a run needs and start runs, with plain forms.

``GET /page/start`` shows a form per maker and per starter (app/page/starters.py, filled by
the domains). A form is posted to ``/page/make/<name>`` or ``/page/start/<name>``, read by
forms.py through the API's own schema, and handed to the domain. A mistake renders the
page again with the form's values and each reason beside its field (4xx, nothing stored);
a start shows the new run's page, a make comes back here with what it made preselected.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import DomainError, NotFound, ValidationFailed
from app.extensions import db
from app.page import forms, starters
from app.page.routes import FORM_BYTES, blp
from app.page.session import CSRF_FIELD, signed_in
from app.page.starters import LIST_SIZE, Maker, Pick, Starter
from app.runs import dispatch, idempotency
from app.safe_text import text_problem
from app.uploads import PayloadTooLarge

ONCE_FIELD = "once"
_ONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _takes_uploads(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let a maker's form of files carry as much as the API takes (MAX_FILE_UPLOAD_BYTES
    in all, beside the fields); any other form keeps the page's small limit. Set before
    ``signed_in`` reads the form for its token."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        found = starters.maker(kwargs.get("name", ""))
        if found is None or not any(field.kind == "files" for field in found.fields):
            return view(*args, **kwargs)
        limit = current_app.config["SETTINGS"].MAX_FILE_UPLOAD_BYTES
        request.max_content_length = limit + FORM_BYTES
        try:
            return view(*args, **kwargs)
        except RequestEntityTooLarge:
            raise PayloadTooLarge(
                f"The files are larger than the limit of {limit} bytes in all "
                "(MAX_FILE_UPLOAD_BYTES): add them a few at a time",
                {"files": [f"More than {limit} bytes"]},
            ) from None

    return wrapper


@blp.route("/start")
@signed_in
def start() -> Any:
    """Every maker's and starter's form; ``?pipeline_id=...`` (any pick) preselects."""
    return _render(200, selected=_picks(request.args))


@blp.route("/start/<name>", methods=["POST"])
@signed_in
def start_run(name: str) -> Any:
    """Start a run from a starter's form, then show the run's page."""
    found = starters.starter(name)
    if found is None:
        raise NotFound("Nothing of that name to start", {"name": [name]})
    once, sent = _once_token(), _form_hash()
    key = (db.session, g.api_key_id, once, request.path, sent)
    if started := idempotency.replayed_location(*key):
        return redirect(started, 303)  # the form was sent twice (a double click, a reload)
    try:
        claimed = idempotency.claim(*key)
    except IntegrityError:  # its other copy is (or was) starting the run: show that run
        db.session.rollback()
        if started := idempotency.replayed_location(*key):
            return redirect(started, 303)
        raise
    try:
        target = _picked(found.pick)
        body = forms.read(found.fields, request.form, request.files, found.schema())
        run = found.start(db.session, target, body)
    except DomainError as error:
        db.session.rollback()  # the token's record too: the form can be sent again
        return _render(error.status, f"start-{name}", error)
    claimed.status, claimed.location = 303, url_for("page.run", run_id=run.id)
    db.session.commit()
    dispatch.publish_new(db.session, run.id)  # its task, or a workflow's first nodes'
    return redirect(claimed.location, 303)


def _form_hash() -> str:
    """What the start form said (its fields but the tokens): the same token with other
    values is another start, refused rather than answered with the first run."""
    fields = sorted(
        (name, value)
        for name, values in request.form.lists()
        if name not in (ONCE_FIELD, CSRF_FIELD)
        for value in values
    )
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _once_token() -> str:
    """The start form's once-only token (made when the page was rendered): a form sent
    twice starts one run."""
    token = request.form.get(ONCE_FIELD, "")
    if not _ONCE.fullmatch(token):
        raise ValidationFailed(
            "This form is out of date: open the start page again",
            {ONCE_FIELD: ["Missing or malformed"]},
        )
    return token


@blp.route("/make/<name>", methods=["POST"])
@_takes_uploads
@signed_in
def make(name: str) -> Any:
    """Make something a start needs, then come back with it preselected."""
    found = starters.maker(name)
    if found is None:
        raise NotFound("Nothing of that name to make", {"name": [name]})
    try:
        target = _picked(found.pick) if found.pick else None
        schema = found.schema() if found.schema else None
        values = forms.read(found.fields, request.form, request.files, schema)
        made = found.make(db.session, target, values)
    except DomainError as error:
        db.session.rollback()
        return _render(error.status, f"make-{name}", error)
    flash(made.notice)
    anchor = f"#{made.anchor}" if made.anchor else ""
    return redirect(url_for("page.start", **made.select) + anchor, 303)


def _picks(args: Mapping[str, str]) -> dict[str, str]:
    """Only the lists can be preselected by a link: a link that filled in parameters or
    input URLs would have a person start what someone else wrote."""
    fields = {item.pick.field for item in (*starters.makers(), *starters.starters()) if item.pick}
    return {name: value for name, value in args.items() if name in fields}


def _picked(pick: Pick) -> str:
    """The chosen id: any text that can be looked up (a NUL would fail PostgreSQL's query)."""
    chosen = request.form.get(pick.field, "").strip()
    if not chosen:
        raise ValidationFailed(f"Choose a {pick.label.lower()}", {pick.field: ["Choose one"]})
    if problem := text_problem(chosen):
        raise ValidationFailed(f"No such {pick.label.lower()}", {pick.field: [f"Id {problem}"]})
    return chosen


def _render(
    status: int,
    failed: str | None = None,
    error: DomainError | None = None,
    selected: Mapping[str, str] | None = None,
) -> Any:
    """The page; after a mistake, ``failed`` (the form's id) keeps what was typed and
    shows ``error`` at its fields."""
    choices: dict[str, list[tuple[str, str]]] = {}
    sections = {
        "make": [_form("make", "page.make", m, m.button) for m in starters.makers()],
        "start": [_form("start", "page.start_run", s, "Start") for s in starters.starters()],
    }
    for form in (*sections["make"], *sections["start"]):
        pick = form["pick"]
        if pick is not None and pick.field not in choices:
            choices[pick.field] = list(pick.choices(db.session, LIST_SIZE))
        sent = failed == form["id"]
        form["values"] = request.form if sent else MultiDict(selected or {})
        form["error"] = error if sent else None
        form["errors"] = _by_input(form, error.errors or {}) if sent and error else {}
    return render_template(
        "page/start.html", sections=sections, choices=choices, failed=failed
    ), status


def _form(what: str, endpoint: str, item: Starter | Maker, button: str) -> dict[str, Any]:
    """What the template needs of a starter's or maker's form."""
    return {
        "id": f"{what}-{item.name}",
        "action": url_for(endpoint, name=item.name),
        "label": item.label,
        "help": item.help,
        "pick": item.pick,
        "fields": list(item.fields),
        "multipart": any(field.kind == "files" for field in item.fields),
        "rows": forms.FILE_ROWS,
        "button": button,
        "once": secrets.token_urlsafe(24) if what == "start" else None,
    }


def _inputs(form: Mapping[str, Any]) -> list[str]:
    """The form's inputs an error can be about, as the form names them."""
    names = [form["pick"].field] if form["pick"] else []
    for field in form["fields"]:
        names.append(field.name)
        if field.kind == "files":
            names += [forms.name_input(field.name, row) for row in range(1, forms.FILE_ROWS + 1)]
    return names


def _by_input(form: Mapping[str, Any], errors: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each reason under the input it is about (a nested one says its place, ``A B: ...``);
    reasons about no input of the form under ``""``, shown above it."""
    inputs = _inputs(form)
    shown: dict[str, list[str]] = {}
    for path, reasons in flatten(errors).items():
        owner = next((name for name in inputs if path == name or path.startswith(f"{name}.")), "")
        place = path[len(owner) + 1 :] if owner else path
        shown.setdefault(owner, []).extend(f"{place}: {r}" if place else r for r in reasons)
    return shown


def flatten(errors: Mapping[Any, Any], prefix: str = "") -> dict[str, list[str]]:
    """Nested error messages as ``{"parameters.A B": [...]}``: a field's own errors are
    those under its name."""
    flat: dict[str, list[str]] = {}
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, path))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    flat.update(flatten(item, path))
                else:
                    flat.setdefault(path, []).append(str(item))
        else:
            flat.setdefault(path, []).append(str(value))
    return flat
