"""Data store passwords at rest: Fernet with the configured key, or one made once in the
instance folder (0600) in the embedded default."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from app import create_app
from app.config import Settings, SettingsError
from app.flows import passwords


def test_embedded_key_is_made_once_and_private(tmp_path):
    settings = Settings.from_env({}, INSTANCE_DIR=str(tmp_path))
    token = passwords.encrypt(settings, "hunter2")
    assert "hunter2" not in token
    key_file = tmp_path / passwords.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    passwords._fernet.cache_clear()  # a restart reads the same key back
    assert passwords.decrypt(settings, token) == "hunter2"


def test_configured_key_and_a_changed_key(tmp_path):
    key = Fernet.generate_key().decode()
    settings = Settings.from_env({}, INSTANCE_DIR=str(tmp_path), FLOWS_SECRET_KEY=key)
    token = passwords.encrypt(settings, "pw")
    assert not (tmp_path / passwords.KEY_FILE).exists()
    other = Settings.from_env(
        {}, INSTANCE_DIR=str(tmp_path), FLOWS_SECRET_KEY=Fernet.generate_key().decode()
    )
    with pytest.raises(passwords.SecretUnreadable):
        passwords.decrypt(other, token)


def test_a_malformed_secret_key_stops_the_start_up(tmp_path):
    with pytest.raises(SettingsError, match="FLOWS_SECRET_KEY"):
        create_app(Settings.from_env({}, INSTANCE_DIR=str(tmp_path), FLOWS_SECRET_KEY="nope"))
