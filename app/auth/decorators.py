"""``require_permission``: 401 without a known key, 403 without the permission."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask.views import MethodView

from app.auth.models import Permission
from app.auth.queries import GrantCache
from app.errors import DomainError
from app.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


def init_app(app: Flask, cache_seconds: float) -> None:
    app.extensions["auth.grants"] = GrantCache(cache_seconds)


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_permission(permission: Permission) -> Callable[[F], F]:
    """Guard a view: the caller's key must exist, be unrevoked and hold ``permission``."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _bearer_token()
            if token is None:
                raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
            grant = current_app.extensions["auth.grants"].find(db.session, token)
            if grant is None:
                raise Unauthorized("Unknown or revoked API key")
            if grant.permission != permission:
                raise Forbidden(f"This key lacks the {permission.value} permission")
            g.api_key_id = grant.key_id
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


class ClientView(MethodView):
    """Base of client routes: every method needs a PIPELINES_CLIENT key."""

    decorators = [require_permission(Permission.PIPELINES_CLIENT)]


class WorkerView(MethodView):
    """Base of worker routes: every method needs a PIPELINES_WORKER key."""

    decorators = [require_permission(Permission.PIPELINES_WORKER)]
