"""Reading a start or make form into the body the API would have been sent.

Each field is read by its kind (JSON, KEY=VALUE lines, a whole number, file rows), blank
fields are left out (so the schema's defaults apply), text no database can hold is refused
as the API refuses it, and the rest is loaded through the API's own schema. Every mistake
is a ValidationFailed keyed by the form field it is about, so the form can show it there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, BinaryIO

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import FileStorage, MultiDict

from app.errors import ValidationFailed
from app.filenames import name_problem
from app.page.starters import Field
from app.safe_text import find_problems

#: Rows of a ``files`` field: a file and the name to store it under, each.
FILE_ROWS = 5
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,15}")


class _Problem(Exception):
    """What is wrong with one field's text, said to the person who typed it."""


def file_input(field: str, row: int) -> str:
    return f"{field}-{row}-file"


def name_input(field: str, row: int) -> str:
    return f"{field}-{row}-name"


def read(
    fields: Sequence[Field],
    form: MultiDict[str, str],
    files: MultiDict[str, FileStorage],
    schema: Schema | None,
) -> dict[str, Any]:
    """The fields' values, loaded through ``schema``; ``files`` fields as (name, stream)."""
    body: dict[str, Any] = {}
    uploads: dict[str, list[tuple[str, BinaryIO]]] = {}
    errors: dict[str, list[str]] = {}
    for field in fields:
        if field.kind == "files":
            uploads[field.name] = _file_rows(field.name, form, files, errors)
            continue
        text = form.get(field.name, "")
        try:
            value = _READERS[field.kind](text) if text.strip() else None
        except _Problem as problem:
            errors[field.name] = [str(problem)]
            continue
        if value is not None:
            body[field.name] = value
    if errors:
        raise ValidationFailed("Some fields need another look", errors)
    if problems := find_problems(body):
        raise ValidationFailed("Text that cannot be stored", problems)
    if schema is not None:
        try:
            body = schema.load(body)
        except ValidationError as exc:
            raise ValidationFailed("Some fields need another look", exc.messages) from None
    return {**body, **uploads}


def _text(text: str) -> str:
    return text.strip()


def _number(text: str) -> int | str:
    """A whole number, or the text itself for the schema to refuse in its own words."""
    text = text.strip()
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else text


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _Problem(f"Not valid JSON: {exc.msg} ({where})") from None
    except RecursionError:
        raise _Problem("Not valid JSON: nested too deeply") from None


def _mapping(text: str) -> Any:
    """A JSON object, or ``KEY=VALUE`` lines (blank lines and ``#`` comments skipped)."""
    if text.lstrip().startswith("{"):
        return _json(text)
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise _Problem(f"Line {number}: write KEY=VALUE, or give a JSON object")
        result[key.strip()] = value.strip()
    return result


_READERS = {"text": _text, "number": _number, "json": _json, "mapping": _mapping}


def _file_rows(
    field: str,
    form: MultiDict[str, str],
    files: MultiDict[str, FileStorage],
    errors: dict[str, list[str]],
) -> list[tuple[str, BinaryIO]]:
    """Each row with a file: the name typed beside it, else the file's own name, checked
    as the API checks ``?name=`` (a relative path that stays in the job folder)."""
    rows: list[tuple[str, BinaryIO]] = []
    seen: dict[str, int] = {}
    for row in range(1, FILE_ROWS + 1):
        upload = files.get(file_input(field, row))
        if upload is None or not upload.filename:
            continue
        name = form.get(name_input(field, row), "").strip() or upload.filename
        problem = name_problem(name)  # its characters: no NUL, no surrogate either
        if problem:
            errors[name_input(field, row)] = [f"File name {name!r} {problem}"]
        elif name in seen:
            errors[name_input(field, row)] = [f"{name!r} is given to row {seen[name]} too"]
        else:
            seen[name] = row
            rows.append((name, upload.stream))
    if not rows and not errors:
        errors[field] = ["Choose at least one file"]
    return rows
