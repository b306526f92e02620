"""Validation of user-supplied file names (pipeline files, inputs, artifacts).

A name is a relative POSIX path inside a job's folder. Anything that could leave that
folder, or that a shell or an HTTP header could misread, is refused here once, for the API
and the worker alike.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 255
_SEGMENT_RE = r"[A-Za-z0-9_][A-Za-z0-9._+ -]*"
_SEGMENT = re.compile(rf"^{_SEGMENT_RE}$")

#: The rules of ``name_problem`` as one regular expression (with ``MAX_NAME_LENGTH``), for
#: the OpenAPI spec: a segment cannot be empty, ``.`` or ``..`` since it cannot start with '.'.
NAME_PATTERN = rf"^{_SEGMENT_RE}(/{_SEGMENT_RE})*$"
#: A name whose last segment ends in ``.glm`` (any case): what a pipeline's model must be.
GLM_NAME_PATTERN = rf"^({_SEGMENT_RE}/)*{_SEGMENT_RE}\.[Gg][Ll][Mm]$"


def name_problem(name: str) -> str | None:
    """Return why ``name`` is not acceptable, or None if it is."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    if name.startswith("/"):
        return "must be a relative path"
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            return "must not contain empty, '.' or '..' path segments"
        if not _SEGMENT.fullmatch(segment):  # fullmatch: "$" would allow a final newline
            return (
                "each path segment must start with a letter, digit or '_' and contain only "
                "letters, digits, '.', '_', '+', '-' and spaces"
            )
    return None


def is_valid_name(name: str) -> bool:
    return name_problem(name) is None
