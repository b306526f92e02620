"""Marshmallow pieces the request schemas share, each stricter than the stock one in a way
the OpenAPI spec says (a number is a JSON number; a pattern matches the whole value)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

# URLs as the spec's patterns say them; validators use the same expressions. A host is a DNS
# name or an IPv4 address (an IPv6 host is reached by its name), after optional user info,
# before an optional port.
URL_HOST = r"([A-Za-z0-9._~!$&'()*+,;=:%-]+@)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?"
HTTP_URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://{URL_HOST}([/?#][!-~]*)?$"


class StrictFloat(fields.Float):
    """A JSON number only: the stock Float also turns the string "3.5" into 3.5."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON boolean only: the stock Boolean also takes 1, "yes" and "true"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def StrictInteger(**kwargs: Any) -> fields.Integer:  # noqa: N802 - a field factory
    """A JSON integer only: the stock Integer also takes 2.7 (as 2) and "3"."""
    return fields.Integer(strict=True, **kwargs)


class JsonObject(fields.Dict):
    """Free-form JSON (an error's details): any values, but text without NUL, as everywhere
    (app/safe_text.py). The spec shows it as the recursive JsonObject schema."""


class FullMatch(validate.Regexp):
    """A Regexp the whole value must match, as JSON Schema's ``pattern`` does here (Python's
    ``$`` alone also matches before a final newline). The spec shows it as ``pattern``."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value
