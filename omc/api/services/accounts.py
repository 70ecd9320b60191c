"""Trading accounts and who owns them (`api_accounts`).

An account's name is its journal's name (`floor_journal.account`), unique across users: a
name another user owns, or a journal nobody owns over the API (one `omc trade paper` wrote),
cannot be created (`AccountTaken`). `owned` answers None for another user's account, so the
routes answer 404. `claim` gives an existing journal to a user (`omc demo --serve`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from omc.api.models import ACCOUNTS
from omc.core.time import utcnow
from omc.floor.trading.journal import TABLE as JOURNAL

MODES = ("paper",)


class AccountTaken(ValueError):
    """The name is another account's."""


@dataclass(frozen=True)
class AccountRow:
    name: str
    owner_id: int
    mode: str
    cash: Decimal
    created_at: datetime


def _row(r: object) -> AccountRow:
    return AccountRow(r.name, r.owner_id, r.mode, r.cash, r.created_at)  # type: ignore[attr-defined]


def create(engine: Engine, owner_id: int, name: str, *, mode: str, cash: Decimal) -> AccountRow:
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {list(MODES)}")
    if cash <= 0:
        raise ValueError("cash: must be positive")
    with engine.begin() as conn:
        journaled = conn.execute(
            select(JOURNAL.c.seq).where(JOURNAL.c.account == name).limit(1)
        ).first()
        if journaled is not None:
            raise AccountTaken(f"name: an account {name!r} exists already")
        row = AccountRow(name, owner_id, mode, cash, utcnow())
        try:
            conn.execute(ACCOUNTS.insert().values(**asdict(row)))
        except IntegrityError:
            raise AccountTaken(f"name: an account {name!r} exists already") from None
    return row


def claim(engine: Engine, owner_id: int, name: str, *, cash: Decimal) -> AccountRow:
    """Make `owner_id` the owner of account `name` (journaled or not), paper mode."""
    with engine.begin() as conn:
        conn.execute(ACCOUNTS.delete().where(ACCOUNTS.c.name == name))
        row = AccountRow(name, owner_id, "paper", cash, utcnow())
        conn.execute(ACCOUNTS.insert().values(**asdict(row)))
    return row


def owned(engine: Engine, owner_id: int, name: str) -> AccountRow | None:
    t = ACCOUNTS.c
    with engine.connect() as conn:
        r = conn.execute(select(ACCOUNTS).where(t.name == name, t.owner_id == owner_id)).first()
    return None if r is None else _row(r)


def names(engine: Engine, owner_id: int) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(select(ACCOUNTS.c.name).where(ACCOUNTS.c.owner_id == owner_id)).scalars()
        )


def page(
    engine: Engine, owner_id: int, *, limit: int, after: str | None = None
) -> tuple[list[AccountRow], bool]:
    """The owner's accounts by name, after `after`; and whether more follow."""
    t = ACCOUNTS.c
    query = select(ACCOUNTS).where(t.owner_id == owner_id)
    if after is not None:
        query = query.where(t.name > after)
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(query.order_by(t.name).limit(limit + 1))]
    return rows[:limit], len(rows) > limit
