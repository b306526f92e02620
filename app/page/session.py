"""Signing in to the page: a cookie session that names an API key, and CSRF tokens.

The key itself is typed into a form once and never stored: the session (Flask's signed
cookie, HttpOnly, SameSite=Strict, expiring after PAGE_SESSION_SECONDS) holds the key's id
and a random CSRF token. Requests re-check that the key is unrevoked and holds
PIPELINES_CLIENT, so revoking a key signs its pages out (within AUTH_CACHE_SECONDS).
Every state-changing form carries the token; a POST without it is refused (403), and so
is one from another origin.
"""

from __future__ import annotations

import functools
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cachetools import TTLCache
from flask import Flask, current_app, g, request, session

from app.auth.decorators import Forbidden, Unauthorized
from app.auth.models import Permission
from app.auth.queries import find_active_key, find_active_key_by_id
from app.config import Settings
from app.extensions import db

F = TypeVar("F", bound=Callable[..., Any])
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_lock = threading.Lock()


class NotSignedIn(Unauthorized):
    """No session, or its key was revoked: HTML pages answer with the sign-in form."""


def init_app(app: Flask, settings: Settings) -> None:
    if settings.AUTH_CACHE_SECONDS > 0:
        app.extensions["page.keys"] = TTLCache(10_000, settings.AUTH_CACHE_SECONDS)
    app.config.update(
        SECRET_KEY=settings.PAGE_SESSION_SECRET or _instance_secret(settings.INSTANCE_DIR),
        SESSION_COOKIE_NAME="jobs_page",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.PAGE_COOKIE_SECURE,
        SESSION_COOKIE_PATH=f"{app.config.get('MOUNTED_AT', '')}/page",
        PERMANENT_SESSION_LIFETIME=settings.PAGE_SESSION_SECONDS,
    )


def _instance_secret(instance_dir: str) -> str:
    """A random signing secret kept in the instance folder, shared by every worker process
    of one machine (the first to start writes it; O_EXCL makes that race-free)."""
    path = Path(instance_dir) / "page_session_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(100):  # another process may be between its create and its write
        secret = path.read_text().strip()
        if secret:
            return secret
    raise RuntimeError(f"{path} is empty: delete it and start again")


def csrf_token() -> str:
    """This browser's CSRF token (made on first use, kept in the session)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(session[CSRF_FIELD])


def check_csrf() -> None:
    """Refuse a state-changing request without this session's token or from elsewhere."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise Forbidden("Cross-origin request refused", {"Origin": [origin]})
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_FIELD) or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise Forbidden(
            "CSRF token missing or wrong: reload the page and try again",
            {CSRF_FIELD: ["Missing or not this session's"]},
        )


def sign_in(token: str) -> None:
    """Start a session for ``token``'s key: 401 unknown or revoked, 403 not a client key."""
    key = find_active_key(db.session, token.strip()) if token.strip() else None
    if key is None:
        raise Unauthorized("Unknown or revoked API key", {"key": ["Not a valid key"]})
    if key.permission != Permission.PIPELINES_CLIENT:
        raise Forbidden(
            f"This key lacks the {Permission.PIPELINES_CLIENT.value} permission",
            {"key": ["Not a client key"]},
        )
    session.clear()  # a fresh session (and CSRF token) for the signed-in browser
    session.permanent = True
    session["key_id"] = key.id
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def signed_in_key() -> int | None:
    """The id of the session's key if it is still an unrevoked client key.

    Valid keys are remembered for AUTH_CACHE_SECONDS, as the API's grants are: an open
    page polls every second, and a query per poll for an answer that rarely changes is
    the largest share of a 304's cost. A revocation signs pages out within that time.
    """
    key_id = session.get("key_id")
    if not isinstance(key_id, int):
        return None
    valid: TTLCache[int, bool] | None = current_app.extensions.get("page.keys")
    if valid is not None:
        with _lock:
            if valid.get(key_id):
                return key_id
    key = find_active_key_by_id(db.session, key_id)
    if key is None or key.permission != Permission.PIPELINES_CLIENT:
        return None
    if valid is not None:
        with _lock:
            valid[key_id] = True
    return key.id


def signed_in(view: F) -> F:
    """Guard a page view: a session of a valid client key, and CSRF on every POST."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key_id = signed_in_key()
        if key_id is None:
            raise NotSignedIn("Sign in with an API key first")
        if request.method not in ("GET", "HEAD"):
            check_csrf()
        g.api_key_id = key_id
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def poll_seconds() -> float:
    return float(current_app.config["SETTINGS"].PAGE_POLL_SECONDS)
