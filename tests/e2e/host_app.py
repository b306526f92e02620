"""A host Flask application with its own routes, model, error pages and JSON settings, that
embeds the job service under /tools/jobs (served by gunicorn in tests/e2e/test_embedding.py).

Run: ``gunicorn 'tests.e2e.host_app:create_host_app()'`` with HOST_DATABASE_URI set and the
service's own settings in the environment (SQLALCHEMY_DATABASE_URI may be the same database).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.embedding import JobService

PREFIX = "/tools/jobs"


class HostBase(DeclarativeBase):
    pass


host_db = SQLAlchemy(model_class=HostBase)


class Note(host_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "host_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


def create_host_app() -> Flask:
    host = Flask("host")
    host.config["SQLALCHEMY_DATABASE_URI"] = os.environ["HOST_DATABASE_URI"]
    host.json.sort_keys = False  # type: ignore[attr-defined]
    host.json.compact = False  # type: ignore[attr-defined]
    host_db.init_app(host)

    @host.errorhandler(404)
    def not_found(_error: Any) -> tuple[str, int, dict[str, str]]:
        return "host: no such page", 404, {"Content-Type": "text/plain"}

    @host.route("/notes", methods=["GET", "POST"])
    def notes() -> Any:
        if request.method == "POST":
            host_db.session.add(Note(text=request.get_json()["text"]))
            host_db.session.commit()
        rows = host_db.session.scalars(host_db.select(Note).order_by(Note.id)).all()
        return jsonify(zebra=len(rows), apple=[note.text for note in rows])

    with host.app_context():
        host_db.create_all()
    jobs = JobService(host, prefix=PREFIX)
    jobs.upgrade()
    jobs.start_background()
    return host
