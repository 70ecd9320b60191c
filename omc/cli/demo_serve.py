"""`omc demo --serve`: after the demo job, the dashboard with the demo in it.

A local user `demo` (admin of this installation) gets a new random password, printed once.
It owns what the demo made — the Lab study, and `demo-paper`, the account the demo's paper
replay journaled — plus the demo backtest submitted again as a backtest job of the API, and
a paper session on an account `demo-replay` that replays the demo candles at
`REPLAY_BARS_PER_SECOND` in the server while you watch its fills arrive. Then `omc serve`'s
machinery serves it on 127.0.0.1. Running it again reuses all of that (new password)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from omc.cli.context import console
from omc.core.time import utcnow
from omc.demo.job import DEMO_EXCHANGE, DEMO_STRATEGY, LAB_GOAL, PAPER_ACCOUNT

if TYPE_CHECKING:
    from omc.api.auth.users import UserInfo
    from omc.api.state import ApiState

DEMO_USER = "demo"
REPLAY_ACCOUNT = "demo-replay"
REPLAY_BARS_PER_SECOND = 20.0
CASH = Decimal(10000)
SERIES = {"exchange": DEMO_EXCHANGE, "symbol": "BTC/USDT", "timeframe": "5m"}


def demo_user(engine: Engine) -> tuple[UserInfo, str]:
    """The demo user with a fresh random password (created the first time)."""
    from omc.api.auth.users import create_user, find, set_password

    password = secrets.token_urlsafe(12)
    if find(engine, DEMO_USER) is None:
        return create_user(engine, DEMO_USER, password, admin=True, actor="demo"), password
    return set_password(engine, DEMO_USER, password, actor="demo"), password


def _backtest(st: ApiState, user: UserInfo) -> str:
    """The demo backtest as the demo user's job (the one already done, if any)."""
    from omc.api.schemas.backtests import BacktestIn

    name, params = DEMO_STRATEGY
    request = BacktestIn(strategy=name, params=params, **SERIES).model_dump(mode="json")
    jobs, _ = st.jobs.page(user.id, limit=100)
    for job in jobs:
        if job.request == request and job.status in ("queued", "running", "done"):
            return job.id
    return st.jobs.submit(user.id, request)


def _replay(st: ApiState, user: UserInfo) -> str:
    """A paper session replaying the demo candles in the server (the running one, if any)."""
    from omc.api.schemas.floor import SessionIn
    from omc.api.services import accounts

    row = accounts.owned(st.engine, user.id, REPLAY_ACCOUNT) or accounts.claim(
        st.engine, user.id, REPLAY_ACCOUNT, cash=CASH
    )
    running = [v for v in st.paper.page(user.id, limit=20, account=row.name)[0]
               if v.status in ("queued", "running", "paused")]  # fmt: skip
    if running:
        return running[0].id
    name, params = DEMO_STRATEGY
    body = SessionIn(strategy=name, params=params, bars_per_second=REPLAY_BARS_PER_SECOND, **SERIES)
    return st.paper.submit(user.id, row, body.model_dump(mode="json"))


def _lab_study(engine: Engine, user: UserInfo) -> str | None:
    """The demo's Lab study, given to the demo user; None if the demo has none."""
    from omc.api.models import LAB_OWNERS
    from omc.lab.session.store import list_sessions

    found = [r for r in list_sessions(engine, limit=500) if r.goal == LAB_GOAL]
    if not found:
        return None
    sid = found[0].id
    with engine.begin() as conn:
        owner = conn.execute(
            select(LAB_OWNERS.c.owner_id).where(LAB_OWNERS.c.session_id == sid)
        ).first()
        if owner is None:
            conn.execute(
                LAB_OWNERS.insert().values(session_id=sid, owner_id=user.id, created_at=utcnow())
            )
    return sid


def stage(st: ApiState) -> dict[str, Any]:
    """Give the demo to the demo user; what it made (ids, names, the password)."""
    from omc.api.services import accounts

    user, password = demo_user(st.engine)
    accounts.claim(st.engine, user.id, PAPER_ACCOUNT, cash=CASH)
    return {
        "user": user.name,
        "password": password,
        "backtest": _backtest(st, user),
        "session": _replay(st, user),
        "lab": _lab_study(st.engine, user),
    }


def serve(port: int) -> None:
    from omc.cli.serve import build, run, url

    application, api = build("127.0.0.1", False)
    made = stage(application.state.omc)
    base = url("127.0.0.1", port, api)
    console.print(
        f"\n[bold]dashboard:[/] {base}/  — log in as [bold]{made['user']}[/] with password "
        f"[bold]{made['password']}[/] (shown once; `omc demo --serve` again makes a new one)",
        highlight=False,
    )
    console.print(
        f"in it: backtest {made['backtest']}, paper session {made['session']} replaying on "
        f"account {REPLAY_ACCOUNT} ({REPLAY_BARS_PER_SECOND:g} bars/s), the demo's paper "
        f"account {PAPER_ACCOUNT}"
        + (f", Lab study {made['lab']}" if made["lab"] else "")
        + ". Ctrl-C stops the server.",
        highlight=False,
    )
    run(application, "127.0.0.1", port, api)
