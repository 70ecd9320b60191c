"""Password hashing with argon2id (`argon2-cffi`), and a dummy verification so that a login
for an unknown or disabled user costs the same time as a wrong password."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """A password OMC refuses to store (the message never contains it)."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("omc-dummy-password-for-timing")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; an absent hash still runs one verification."""
    target = stored_hash or _dummy_hash()
    try:
        ok = _hasher.verify(target, password[:MAX_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return bool(ok) and stored_hash is not None
