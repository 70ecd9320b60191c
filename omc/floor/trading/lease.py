"""One writer per account: the lease on an account's journal (`floor_account_leases`).

A process that writes an account's journal (a trading session, or `omc kill` acting on an
account no session runs) first takes the account's lease: one row naming its holder
(`host:pid:token`) and until when it holds it. Taking it is atomic in the database — an
insert, else a compare-and-set update that only matches an expired lease or one whose holder
is a dead process on this host — so of two processes racing for an account exactly one wins;
the other gets `LeaseHeld`, naming the holder.

The holder renews the lease in the transaction of every journal flush (`Lease.renew`), which
is also the fence: a holder that lost its lease (it stalled past the TTL and another process
took over) gets `LeaseLost` and its flush writes nothing. `heartbeat()` renews it while
nothing is flushed. A clean exit releases it; after a crash (kill -9) the next process takes
it over at once when the dead holder ran on this host, else when it expires
(`LEASE_TTL_S` after its last renewal; hosts sharing a database need synchronised clocks).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Table, delete, select, update
from sqlalchemy.engine import Connection

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.floor.models import AccountLease

TABLE: Table = AccountLease.__table__  # type: ignore[assignment]
LEASE_TTL_S = 30.0
"""How long a lease lasts after its last renewal (a session renews it every bar)."""


class JournalWriterError(RuntimeError):
    """This process may not write the account's journal (another process does)."""


class LeaseHeld(JournalWriterError):
    """Another live process holds the account's lease."""


class LeaseLost(JournalWriterError):
    """This process's lease was taken over: it must stop writing."""


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """A stored lease."""

    account: str
    holder: str
    token: int
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        """Held: not expired, and not by a process of this host that has died."""
        return self.expires_at > now and not _dead_here(self.holder)


def new_holder() -> str:
    """A holder id unique for ever: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _read(conn: Connection, account: str) -> LeaseInfo | None:
    t = TABLE.c
    row = conn.execute(
        select(t.account, t.holder, t.token, t.acquired_at, t.heartbeat_at, t.expires_at).where(
            t.account == account
        )
    ).first()
    return LeaseInfo(*row) if row else None


def stored_lease(engine: Engine, account: str) -> LeaseInfo | None:
    """The stored lease of `account` (live or not)."""
    with engine.connect() as conn:
        return _read(conn, account)


def current_holder(engine: Engine, account: str) -> str | None:
    """Who holds `account`'s lease now (None: nobody; an expired or dead holder is nobody)."""
    info = stored_lease(engine, account)
    return info.holder if info is not None and info.live(utcnow()) else None


def _held(info: LeaseInfo) -> LeaseHeld:
    left = (info.expires_at - utcnow()).total_seconds()
    return LeaseHeld(
        f"account {info.account!r} is being written by {info.holder} (lease until "
        f"{info.expires_at:%Y-%m-%d %H:%M:%S} UTC): one writer per account — stop that "
        f"process first; if it crashed, its lease expires in {max(left, 0):.0f} s"
    )


class Lease:
    """This process's lease on one account (see module docstring)."""

    def __init__(self, engine: Engine, account: str, holder: str, ttl_s: float) -> None:
        self.engine = engine
        self.account = account
        self.holder = holder
        self.ttl_s = ttl_s
        self._renewed = time.monotonic()

    @classmethod
    def acquire(
        cls, engine: Engine, account: str, *, ttl_s: float = LEASE_TTL_S, holder: str | None = None
    ) -> Lease:
        """Take `account`'s lease (atomically), or raise `LeaseHeld` naming its holder."""
        lease = cls(engine, account, holder or new_holder(), ttl_s)
        now = utcnow()
        values = {
            "holder": lease.holder,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + timedelta(seconds=ttl_s),
        }
        with engine.begin() as conn:
            row = {"account": account, "token": 1, **values}
            if upsert(conn, TABLE, [row], key=("account",)).inserted:
                return lease
            info = _read(conn, account)
            if info is not None and info.live(now):
                raise _held(info)
            t = TABLE.c
            cas = update(TABLE).where(t.account == account)
            if info is not None:  # take over exactly the stale lease we saw
                cas = cas.where(t.holder == info.holder, t.token == info.token)
            taken = conn.execute(cas.values(token=t.token + 1, **values)).rowcount
            if taken != 1:
                raced = _read(conn, account)
                raise _held(raced) if raced else LeaseHeld(f"account {account!r}: lease raced")
        return lease

    def renew(self, conn: Connection) -> None:
        """Extend the lease inside the caller's transaction (the fence of every journal
        flush); `LeaseLost` when another process took it over."""
        now = utcnow()
        t = TABLE.c
        renewed = conn.execute(
            update(TABLE)
            .where(t.account == self.account, t.holder == self.holder)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.ttl_s))
        ).rowcount
        if renewed != 1:
            info = _read(conn, self.account)
            who = info.holder if info is not None else "nobody (released)"
            raise LeaseLost(
                f"account {self.account!r}: this process ({self.holder}) lost its lease to "
                f"{who}; it stopped writing — nothing of this flush was written"
            )
        self._renewed = time.monotonic()

    def heartbeat(self) -> None:
        """Renew when a third of the TTL has passed since the last renewal."""
        if time.monotonic() - self._renewed >= self.ttl_s / 3:
            with self.engine.begin() as conn:
                self.renew(conn)

    def release(self) -> None:
        """Give the lease up (a no-op when it was lost)."""
        t = TABLE.c
        with self.engine.begin() as conn:
            conn.execute(delete(TABLE).where(t.account == self.account, t.holder == self.holder))
