"""What the OpenAPI spec says beyond each route's own decorators, said once.

flask-smorest builds the spec from the marshmallow schemas (docs/adr/0007); this module
makes that spec exact (docs/adr/0014): the error body and the error answers every operation
shares, the rules a validator applies that a field type alone does not show, and the path
parameters' rules. ``tests/api/test_openapi_fuzz.py`` holds the server to it.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api
from marshmallow import Schema, fields
from werkzeug.routing import BaseConverter, PathConverter, UnicodeConverter

from app.fields import JsonObject
from app.filenames import MAX_NAME_LENGTH, NAME_PATTERN

#: What the spec says of every free-text string: no NUL character (app/safe_text.py refuses
#: it, and unpaired surrogates, which a UTF-8 spec cannot express).
NO_NUL_PATTERN = r"^[^\x00]*$"


class ErrorSchema(Schema):
    """The body of every error answer (app/errors.py)."""

    code = fields.String(
        required=True,
        metadata={"description": "Machine-readable, e.g. VALIDATION_FAILED, NOT_FOUND"},
    )
    message = fields.String(required=True, metadata={"description": "For people"})
    errors = fields.Dict(
        required=True,
        metadata={"description": "Where and why: `{field: [reasons]}`, nested by location"},
    )


# Free-form JSON whose text has no NUL: OpenAPI 3.0 has no propertyNames, so the rule on keys
# is the x-propertyNames extension (the fuzz test reads it as patternProperties).
_JSON_OBJECT_REF = {"$ref": "#/components/schemas/JsonObject"}
JSON_SCHEMAS = {
    "JsonValue": {
        "nullable": True,
        "anyOf": [
            {"type": "string", "pattern": NO_NUL_PATTERN},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
            _JSON_OBJECT_REF,
        ],
    },
    "JsonObject": {
        "type": "object",
        "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        "x-propertyNames": {"pattern": NO_NUL_PATTERN},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": "Error"}}}


#: Error answers shared by many operations, as response components.
ERROR_RESPONSES = {
    "BadRequest": _error("The body is not well-formed JSON"),
    "Unauthorized": _error("Missing, unknown or revoked API key"),
    "Forbidden": _error("The key lacks this operation's permission"),
    "NotFound": _error("No such resource (also a child id under another parent)"),
    "UnsupportedMediaType": _error("A body that is not application/json"),
    "ValidationFailed": _error("A value is invalid; `errors` names it and says why"),
}

#: Headers and parameters several operations share.
HEADERS = {
    "Location": {
        "description": "URL of the created resource",
        "schema": {"type": "string", "format": "uri-reference"},
        "required": True,
    },
    "IdempotentReplayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Your id for this request: a repeat gets the first answer (with "
    "Idempotent-Replayed) instead of doing the work twice; the same key with another body "
    "is 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL_PATTERN},
}


#: Response headers of a route, by name, as ``@blp.response(..., headers=...)`` takes them.
LOCATION = {"Location": "Location"}
IDEMPOTENT = {"Idempotent-Replayed": "IdempotentReplayed"}

OCTET_STREAM = "application/octet-stream"
BINARY_BODY = {"type": "string", "format": "binary"}
#: A request body that is a file, streamed (none is an empty file).
BINARY = {"required": False, "content": {OCTET_STREAM: {"schema": BINARY_BODY}}}


class FileNameConverter(PathConverter):
    """``<filename:name>``: a file path in the URL. Routing takes any path (a route says
    what is wrong with a bad name); the spec says what a good one is."""


def _text_path_parameter(_converter: BaseConverter) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "pattern": NO_NUL_PATTERN}


def _file_name_path_parameter(_converter: BaseConverter) -> dict[str, Any]:
    return {"type": "string", "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN}


def _common_errors(path: str, operation: dict[str, Any]) -> dict[int, str]:
    """The error answers an operation gives by what it is, whatever it does."""
    found: dict[int, str] = {}
    if operation.get("security") != []:  # the spec's global security applies
        found |= {401: "Unauthorized", 403: "Forbidden"}
    if "{" in path:  # ids in the path: unknown ones, and text that cannot be stored
        found |= {404: "NotFound", 422: "ValidationFailed"}
    if operation.get("parameters"):  # query parameters (path ones are on the path)
        found[422] = "ValidationFailed"
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        found |= {400: "BadRequest", 415: "UnsupportedMediaType", 422: "ValidationFailed"}
    return found


class CommonErrorsPlugin(BasePlugin):
    """Adds each operation's shared error answers and checks it has an operationId."""

    def operation_helper(self, path: str | None = None, operations: Any = None, **_: Any) -> None:
        for method, operation in (operations or {}).items():
            if "operationId" not in operation:
                raise ValueError(f"{method.upper()} {path} has no operationId")
            responses = operation.setdefault("responses", {})
            documented = {str(code) for code in responses}
            for status, name in _common_errors(path or "", operation).items():
                # flask-smorest's own 422 is the generic UNPROCESSABLE_ENTITY: use ours.
                if str(status) not in documented or responses.get(status) == "UNPROCESSABLE_ENTITY":
                    responses.pop(status, None)
                    responses[status] = name


def _nullable_nested(_converter: Any, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
    """A nullable nested object as ``nullable`` + ``allOf``: apispec's ``anyOf`` with a bare
    nullable object lets any object through, so the nested shape was never checked."""
    any_of = ret.get("anyOf")
    if isinstance(field, fields.Nested) and field.allow_none and isinstance(any_of, list):
        refs = [item for item in any_of if "$ref" in item]
        if len(refs) == 1:
            del ret["anyOf"]
            return {"nullable": True, "allOf": refs}
    return {}


def _json_object(_converter: Any, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
    """A JsonObject field refers to the JsonObject schema (nullable as a nested object is)."""
    if not isinstance(field, JsonObject):
        return {}
    for key in ("type", "additionalProperties", "nullable"):
        ret.pop(key, None)
    return {"allOf": [_JSON_OBJECT_REF], **({"nullable": True} if field.allow_none else {})}


def _enum_type(_converter: Any, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
    """An enum of names is a string (apispec leaves the type out, and clients want it)."""
    choices = ret.get("enum")
    if isinstance(field, fields.Enum) and "type" not in ret and choices:
        if all(isinstance(choice, str) for choice in choices):
            return {"type": "string"}
    return {}


def _no_nul(_converter: Any, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
    """Free text the client sends has no NUL (refused by app/safe_text.py)."""
    plain_text = ret.get("type") == "string" and not {"pattern", "format", "enum"} & set(ret)
    if isinstance(field, fields.String) and plain_text and not field.dump_only:
        return {"pattern": NO_NUL_PATTERN}
    return {}


class ServiceApi(Api):
    """flask-smorest's Api with the service's error body and the spec rules above."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" answer: each operation lists the errors it really gives.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self) -> None:
        super().__init__(spec_kwargs={"extra_plugins": [CommonErrorsPlugin()]})
        self.register_converter(UnicodeConverter, _text_path_parameter)
        self.register_converter(FileNameConverter, _file_name_path_parameter)

    def init_app(self, app: Flask, **kwargs: Any) -> None:
        app.url_map.converters["filename"] = FileNameConverter
        super().init_app(app, **kwargs)

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)
        settings = self._app.config["SETTINGS"]

        def settings_bounds(_converter: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
            """``metadata={"maximum_setting": NAME}`` (or ``minimum_setting``): the bound is
            that setting's value."""
            bounds = {}
            for bound in ("maximum", "minimum"):
                name = field.metadata.get(f"{bound}_setting")
                if name:
                    bounds[bound] = getattr(settings, name)
            return bounds

        def registered_enum(_converter: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
            """``metadata={"enum_of": callable}``: the choices registered when the app is built."""
            choices = field.metadata.get("enum_of")
            return {"enum": choices()} if choices else {}

        for function in (
            _nullable_nested,
            _json_object,
            _enum_type,
            _no_nul,
            settings_bounds,
            registered_enum,
        ):
            self.ma_plugin.converter.add_attribute_function(function)
        for name, component in JSON_SCHEMAS.items():
            self.spec.components.schema(name, component)
        for name, response in ERROR_RESPONSES.items():
            self.spec.components.response(name, response)
        for name, header in HEADERS.items():
            self.spec.components.header(name, header)
        self.spec.components.parameter("IdempotencyKey", "header", IDEMPOTENCY_KEY)
