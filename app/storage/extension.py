"""The API app's object store: built once at start-up, reached through ``store()``."""

from __future__ import annotations

from flask import Flask, current_app

from app.config import Settings
from app.storage import ObjectStore, build_store


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["object_store"] = build_store(settings)


def store() -> ObjectStore:
    return current_app.extensions["object_store"]
