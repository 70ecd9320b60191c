"""The user service: create, list, disable, authenticate; and the audit log.

The one write path of `api_users` and `api_audit`, shared by `omc users` and the API routes.
A user's mistake raises `UserError` (one line). Passwords are never stored, logged or echoed:
only their argon2 hash is kept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from omc.api.auth.passwords import WeakPassword, hash_password, verify_password
from omc.api.models import AUDIT, USERS
from omc.core.time import utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class UserError(ValueError):
    """A user's mistake about users (unknown name, taken name, weak password)."""


class UserExists(UserError):
    """The name is taken."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    is_admin: bool
    disabled: bool
    token_version: int
    created_at: datetime


def _info(row: Any) -> UserInfo:
    """A row of `api_users` (a SQLAlchemy Row) as a UserInfo (the hash left behind)."""
    return UserInfo(
        row.id,
        row.name,
        bool(row.is_admin),
        bool(row.disabled),
        row.token_version,
        row.created_at,
    )


def audit(
    engine: Engine,
    action: str,
    actor: str,
    *,
    user_id: int | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            AUDIT.insert().values(
                ts=utcnow(),
                user_id=user_id,
                actor=actor[:64],
                action=action,
                ip=ip,
                detail=detail,
            )
        )


def _hash(password: str) -> str:
    try:
        return hash_password(password)
    except WeakPassword as exc:
        raise UserError(str(exc)) from None


def create_user(
    engine: Engine, name: str, password: str, *, admin: bool = False, actor: str = "cli"
) -> UserInfo:
    if not NAME.match(name):
        raise UserError(
            f"user name {name[:64]!r}: 1-64 letters, digits or . _ @ - (starting with a "
            "letter or digit)"
        )
    hashed = _hash(password)
    now = utcnow()
    try:
        with engine.begin() as conn:
            new_id = conn.execute(
                USERS.insert()
                .values(
                    name=name,
                    password_hash=hashed,
                    is_admin=admin,
                    disabled=False,
                    token_version=0,
                    created_at=now,
                )
                .returning(USERS.c.id)
            ).scalar_one()
    except IntegrityError:
        raise UserExists(f"user {name!r} exists already") from None
    audit(engine, "user_created", actor, user_id=new_id, detail={"name": name, "admin": admin})
    return UserInfo(new_id, name, admin, False, 0, now)


def list_users(engine: Engine) -> list[UserInfo]:
    t = USERS
    with engine.connect() as conn:
        return [_info(row) for row in conn.execute(select(t).order_by(t.c.name))]


def find(engine: Engine, name: str) -> UserInfo | None:
    with engine.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
    return None if row is None else _info(row)


def get(engine: Engine, user_id: int) -> UserInfo | None:
    with engine.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.id == user_id)).first()
    return None if row is None else _info(row)


def revoke_tokens(engine: Engine, user_id: int) -> None:
    """Every token issued to the user so far stops working (logout everywhere)."""
    t = USERS
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == user_id).values(token_version=t.c.token_version + 1))


def disable_user(engine: Engine, name: str, actor: str = "cli") -> UserInfo:
    user = find(engine, name)
    if user is None:
        raise UserError(f"no user {name[:64]!r}")
    t = USERS
    with engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.id == user.id)
            .values(disabled=True, token_version=t.c.token_version + 1)
        )
    audit(engine, "user_disabled", actor, user_id=user.id, detail={"name": name})
    return get(engine, user.id) or user


def set_password(engine: Engine, name: str, password: str, actor: str = "cli") -> UserInfo:
    """A new password for `name` (enabled again); every token issued before stops working."""
    user = find(engine, name)
    if user is None:
        raise UserError(f"no user {name[:64]!r}")
    hashed = _hash(password)
    t = USERS
    with engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.id == user.id)
            .values(password_hash=hashed, disabled=False, token_version=t.c.token_version + 1)
        )
    audit(engine, "password_set", actor, user_id=user.id, detail={"name": name})
    return get(engine, user.id) or user


def authenticate(engine: Engine, name: str, password: str) -> UserInfo | None:
    """The user when the name exists, is enabled and the password matches; else None. The
    work done (one argon2 verification) is the same whichever of the three failed."""
    t = USERS
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.name == name)).first()
    ok = verify_password(None if row is None else row.password_hash, password)
    if row is None or not ok or row.disabled:
        return None
    return _info(row)
