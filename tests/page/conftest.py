"""Signing in to the page in-process: the form's CSRF token and a signed-in test client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: FlaskClient, path: str = "/page/signin") -> str:
    """The session's CSRF token, as a form of ``path`` carries it."""
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def sign_in(client: FlaskClient, token: str) -> Any:
    return client.post(
        "/page/signin", data={"key": token, "csrf_token": csrf(client), "next": "/page/"}
    )


@pytest.fixture
def signed_in(client: FlaskClient, client_headers: dict[str, str]) -> FlaskClient:
    response = sign_in(client, client_headers["Authorization"].split()[1])
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
