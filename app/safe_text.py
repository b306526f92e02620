"""Refuse text no database column can hold, once, before any route sees it.

PostgreSQL rejects a NUL character in any string, and an unpaired UTF-16 surrogate (which
JSON's ``"\\ud800"`` escape produces) cannot be encoded to UTF-8 for either database: both
turned a bad request into a 500. Every string a client can send passes through here: path
and query values and header values (``check_request``, run before each request) and JSON
bodies, keys included (``Parser.pre_load``, run by every ``@blp.arguments`` JSON schema).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, request
from marshmallow import ValidationError
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from app.errors import UnsupportedMediaType, ValidationFailed

JSON_HEADER = "Content-Type: application/json"


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Say why ``value`` cannot be stored, or None if it can."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    if _SURROGATE.search(value):
        return "must not contain unpaired UTF-16 surrogates"
    return None


def _sentence(problem: str) -> str:
    return problem[0].upper() + problem[1:]


def _label(key: Any) -> str:
    """A key as it can be named in an error: escaped if it is itself the bad text."""
    text = str(key)
    return ascii(text) if text_problem(text) else text


def find_problems(value: Any) -> dict[str, Any]:
    """Errors for every bad string in a JSON value, keyed along the path to it."""
    problems: dict[str, Any] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        key_problem = text_problem(key) if isinstance(key, str) else None
        if key_problem:
            problems[_label(key)] = [f"Field name {key_problem}"]
        elif isinstance(item, str):
            if problem := text_problem(item):
                problems[str(key)] = [_sentence(problem)]
        elif isinstance(item, (dict, list)):
            if nested := find_problems(item):
                problems[str(key)] = nested
    return problems


def check_request() -> None:
    """Refuse a request whose path, query or header values hold text that cannot be stored."""
    sources = {
        "path": request.view_args or {},
        "query": {key: value for key, values in request.args.lists() for value in values},
        "headers": dict(request.headers.items()),
    }
    errors = {where: found for where, values in sources.items() if (found := find_problems(values))}
    if errors:
        raise ValidationFailed("Validation failed: text that cannot be stored", errors)


class Parser(FlaskParser):
    """The arguments parser of every blueprint: refuses bad text in a JSON body, and a body
    that is not JSON where JSON is expected (it would otherwise be ignored as absent)."""

    def load_json(self, req: Any, schema: Any) -> Any:
        data = super().load_json(req, schema)
        if data is missing and not is_json_request(req) and req.get_data(cache=True):
            sent = req.mimetype or "no Content-Type"
            raise UnsupportedMediaType(
                f"The body was sent as {sent}, not JSON: send the header '{JSON_HEADER}' "
                "(curl -H 'Content-Type: application/json' -d '{...}')",
                {"Content-Type": [f"Expected application/json, got {sent}"]},
            )
        return data

    def pre_load(self, location_data: Any, *, schema: Any, req: Any, location: str) -> Any:
        if location != "json":
            return location_data
        if isinstance(location_data, (dict, list)) and (problems := find_problems(location_data)):
            raise ValidationError(problems)
        if isinstance(location_data, str) and (problem := text_problem(location_data)):
            raise ValidationError([_sentence(problem)])
        return location_data


def init_app(app: Flask) -> None:
    app.before_request(check_request)
