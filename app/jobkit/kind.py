"""What a job kind is: a name, a parameters schema and a ``run(context)``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from os import PathLike
from typing import TYPE_CHECKING, Any, ClassVar

from marshmallow import Schema

if TYPE_CHECKING:
    from app.jobkit.context import JobContext

KIND_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,59}$"
_KIND_NAME = re.compile(KIND_NAME_PATTERN)
Outputs = Iterable[str | PathLike[str]] | None


class JobError(Exception):
    """Raise it to end the run FAILED with this message, shown to the user as it is.

    Any other exception also fails the run, but its traceback goes to the run's log and
    the message only names the exception's type: users see what you chose to tell them.
    """


class NoParameters(Schema):
    """The parameters schema of a kind that takes none."""


class JobKind:
    """Base class of a job kind. Subclasses set ``name`` and override ``run``."""

    #: Unique, shown to users and used in URLs: lower case, digits and ``_``.
    name: ClassVar[str] = ""
    #: A short human title and a description for the kinds list.
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Marshmallow schema of the parameters, validated when a run is created.
    Parameters: ClassVar[type[Schema]] = NoParameters
    #: Defaults of the run policy (a run may lower the timeout).
    timeout_seconds: ClassVar[int | None] = None
    max_retries: ClassVar[int] = 1
    retry_backoff_seconds: ClassVar[float] = 5.0

    def run(self, context: JobContext) -> Outputs:
        """Do the work in ``context.folder``; return paths of outputs, or declare them
        with ``context.output`` (files written in the folder are outputs anyway)."""
        raise NotImplementedError

    @classmethod
    def check(cls) -> None:
        """Refuse a kind that cannot be offered (bad name, no schema)."""
        if not _KIND_NAME.match(cls.name or ""):
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: job kind name {cls.name!r} must match "
                f"{KIND_NAME_PATTERN}"
            )
        if not (isinstance(cls.Parameters, type) and issubclass(cls.Parameters, Schema)):
            raise TypeError(f"Job kind {cls.name}: Parameters must be a marshmallow Schema class")


def job_kind(
    name: str,
    *,
    parameters: type[Schema] = NoParameters,
    title: str = "",
    description: str = "",
    timeout_seconds: int | None = None,
    max_retries: int = 1,
) -> Callable[[Callable[[JobContext], Outputs]], type[JobKind]]:
    """Make a job kind of a function taking the job's context::

    @job_kind("hello", parameters=HelloParams)
    def hello(context): ...
    """

    def wrap(function: Callable[[JobContext], Outputs]) -> type[JobKind]:
        def run(self: JobKind, context: JobContext) -> Outputs:
            return function(context)

        attributes: dict[str, Any] = {
            "name": name,
            "title": title,
            "description": description or (function.__doc__ or "").strip(),
            "Parameters": parameters,
            "timeout_seconds": timeout_seconds,
            "max_retries": max_retries,
            "run": run,
            "__module__": function.__module__,
            "__doc__": function.__doc__,
        }
        kind = type(function.__name__, (JobKind,), attributes)
        kind.check()
        return kind

    return wrap
