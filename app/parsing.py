"""Request parsing that tells a client what it sent wrong about the body itself.

webargs reads a body as JSON only when its Content-Type says so; otherwise it sees no body
at all and answers "name: Missing data", which sends a newcomer looking at the wrong thing
(``curl -d`` without ``-H 'Content-Type: application/json'``). Here such a body is a 415
that says which header to send.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Request
from webargs.flaskparser import FlaskParser, is_json_request

from app.errors import DomainError

JSON_HEADER = "Content-Type: application/json"


class UnsupportedMediaType(DomainError):
    """The body is not in a form this endpoint reads."""

    status = 415


def has_body(request: Request) -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


class Parser(FlaskParser):
    """A FlaskParser that refuses a body sent without a JSON Content-Type, saying so."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req) and has_body(req):
            sent = req.mimetype or "no Content-Type"
            raise UnsupportedMediaType(
                f"The body was sent as {sent}, not JSON: send the header '{JSON_HEADER}' "
                "(curl -H 'Content-Type: application/json' -d '{...}')",
                {"Content-Type": [f"Expected application/json, got {sent}"]},
            )
        return super()._raw_load_json(req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the Parser above."""

    ARGUMENTS_PARSER = Parser()
