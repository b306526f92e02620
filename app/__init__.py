"""The GridLAB-D job service.

Embed it in another project with ``create_app(Settings.from_env(...))`` and mount or proxy
it; every setting comes from the ``Settings`` object (see app/config.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API app from ``settings`` (default: read from the environment)."""
    # Imported here, not at the top: ``import app`` stays cheap for the worker side and
    # for each simulation process, which need none of Flask's stack (about 1 s to import).
    from app.factory import create_app as build

    return build(settings)
