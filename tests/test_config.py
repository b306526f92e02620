"""Settings are parsed with types from the environment and fail fast when malformed."""

from __future__ import annotations

import pytest

from app.config import Settings, SettingsError


@pytest.mark.parametrize(("raw", "expected"), [("False", False), ("0", False), ("true", True)])
def test_booleans_are_parsed(raw, expected):
    assert Settings.from_env({"WORKER_SANDBOX": raw}).WORKER_SANDBOX is expected


def test_numbers_are_parsed():
    settings = Settings.from_env({"RUN_LEASE_SECONDS": "12", "SWEEP_INTERVAL_SECONDS": "0.5"})
    assert settings.RUN_LEASE_SECONDS == 12 and settings.SWEEP_INTERVAL_SECONDS == 0.5


@pytest.mark.parametrize(
    ("name", "raw"), [("RUN_LEASE_SECONDS", "soon"), ("WORKER_SANDBOX", "maybe")]
)
def test_malformed_values_name_the_variable(name, raw):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: raw})


def test_embedded_defaults_live_in_the_instance_folder(tmp_path):
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path)})
    assert settings.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path / 'jobs.db'}"
    assert settings.CELERY_BROKER_URL == "filesystem://"
    assert settings.ARTIFACTS_DIR == str(tmp_path / "artifacts")
    assert not settings.uses_s3
    assert settings.S3_REGION_NAME == "us-east-1"
