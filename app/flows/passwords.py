"""Data store passwords encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from ``FLOWS_SECRET_KEY``. When it is empty (the embedded default) a key is
made once and kept in ``$INSTANCE_DIR/flows-secret.key`` (mode 0600), so a restart can
still decrypt; a deployment with several API processes sets the same key on all.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.config import Settings, SettingsError

KEY_FILE = "flows-secret.key"


class SecretUnreadable(Exception):
    """A stored password cannot be decrypted with this key (the key changed)."""

    def __init__(self, message: str, store_id: str | None = None):
        super().__init__(message)
        self.store_id = store_id


@functools.lru_cache(maxsize=8)
def _fernet(settings: Settings) -> Fernet:
    if settings.FLOWS_SECRET_KEY:
        return Fernet(settings.FLOWS_SECRET_KEY.encode())
    path = Path(settings.INSTANCE_DIR) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as stream:
                stream.write(key)
    return Fernet(path.read_bytes().strip())


def check_key(settings: Settings) -> None:
    """Stop the start-up on a malformed FLOWS_SECRET_KEY, naming it (not at first use)."""
    if settings.FLOWS_SECRET_KEY:
        try:
            Fernet(settings.FLOWS_SECRET_KEY.encode())
        except (ValueError, TypeError):
            raise SettingsError(
                "FLOWS_SECRET_KEY: expected a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None


def encrypt(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("The stored password cannot be decrypted with this key") from None
