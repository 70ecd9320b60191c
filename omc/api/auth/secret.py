"""The installation's secret key: `OMC_SECRET_KEY`, or a random key in `<data_dir>/secret.key`
created with mode 0600 by `omc init` or on first use (a key file others can read is refused;
an existing file is never overwritten).

The one way OMC loads its secret. Purpose keys are derived from it with HMAC-SHA256
(`derive(secret, "jwt")`, `"csrf"`, `"vault"`), so the token signing key and the credential
vault's encryption key never coincide."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from pydantic import SecretStr

KEY_FILE = "secret.key"
MIN_KEY_LENGTH = 32


class SecretKeyError(ValueError):
    """The secret key is unusable (one line, never the key)."""


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def create_key_file(data_dir: Path) -> bool:
    """Write a new random key to `<data_dir>/secret.key` (mode 0600) unless the file exists;
    True when this call created it. Never overwrites a key."""
    path = key_file(data_dir)
    if path.exists():
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return True


def load_secret(configured: SecretStr | None, data_dir: Path) -> bytes:
    if configured is not None:
        value = configured.get_secret_value()
        if len(value) < MIN_KEY_LENGTH:
            raise SecretKeyError(f"OMC_SECRET_KEY needs at least {MIN_KEY_LENGTH} characters")
        return value.encode()
    path = key_file(data_dir)
    create_key_file(data_dir)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"key file {path} can be read by others (mode {mode:o}): chmod 600 {path}"
        )
    value = path.read_text().strip()
    if len(value) < MIN_KEY_LENGTH:
        raise SecretKeyError(f"key file {path} holds fewer than {MIN_KEY_LENGTH} characters")
    return value.encode()


def derive(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"omc:{purpose}".encode(), hashlib.sha256).digest()
