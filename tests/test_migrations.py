"""`flask db upgrade` on an empty PostgreSQL gives exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine

from app import create_app
from app.extensions import db
from tests.conftest import create_postgres_database, drop_postgres_database, make_settings


def test_upgrade_matches_models(tmp_path):
    uri = create_postgres_database()
    try:
        app = create_app(make_settings(tmp_path, uri))
        with app.app_context():
            upgrade()
            db.engine.dispose()
        engine = create_engine(uri)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            differences = compare_metadata(context, db.metadata)
        engine.dispose()
        assert differences == []
    finally:
        drop_postgres_database(uri)
