"""``GET /``: where a person or a client starts (the API docs, the spec, the API)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from marshmallow import Schema, fields

from app.blueprint import Blueprint

blp = Blueprint("home", __name__, description="Where to start (no key needed).")


class HomeSchema(Schema):
    name = fields.String()
    version = fields.String()
    links = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "docs: the Swagger UI; openapi: the spec; api: the API root; "
            "page: the run page, to follow runs in a browser"
        },
    )


@blp.route("/")
@blp.response(200, HomeSchema)
@blp.doc(operationId="getHome", security=[])
def home() -> dict[str, Any]:
    """The service's name and version, and links to its documentation."""
    return {
        "name": current_app.config["API_TITLE"],
        "version": current_app.config["API_VERSION"],
        "links": {
            "docs": url_for("flasgger.apidocs"),
            "openapi": url_for("flasgger.apispec"),
            "api": f"{request.script_root}/api/v1.0",
            "page": url_for("page.runs"),
        },
    }
