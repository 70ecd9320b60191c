"""A book backtest (`omc backtest --book FILE`): several strategies run together, bar by bar,
each in its own paper account funded with its allocation, every order through its account
Guard and one shared portfolio Guard — the very path paper trading takes, so a book can be
tried before it trades.

The book file (TOML):

    cash = 30000                 # the book's capital
    allocation = "equal"         # fixed | equal | inverse-vol (volatility of each data file)
    max_share = 0.5              # no strategy gets more than this share
    [limits]                     # portfolio limits (`PortfolioLimits`), all optional
    max_coin_gross = 20000
    [[strategy]]
    name = "sma_cross"
    params = { fast = 12, slow = 48 }
    data = "BTC_USDT-5m.csv"     # candles (relative to the book file)
    capital = 10000              # with allocation = "fixed"

All data files must share their bar times. The sessions take turns within each bar (in
file order), so the portfolio Guard sees each order after the ones before it. The report has
each strategy's contribution and the book's metrics; with no portfolio limit binding, each
strategy's result equals its own paper replay with the same capital (the book is the sum of
its parts).
"""

from __future__ import annotations

import math
import threading
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.floor.book.allocation import allocate
from omc.floor.book.portfolio import LayeredGuard, PortfolioGuard, PortfolioLimits
from omc.floor.data import Bars, load_csv
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.paper_session import open_paper_session, session_summary
from omc.floor.venues.paper import ReplayQuotes

ZERO = Decimal(0)


class BookFileError(ValueError):
    """A book file that cannot be used (one line)."""


@dataclass
class Member:
    name: str
    params: dict[str, Any]
    bars: Bars
    capital: Decimal | None = None
    key: str = ""


@dataclass
class BookSpec:
    cash: Decimal
    allocation: str
    max_share: Decimal
    limits: PortfolioLimits
    members: list[Member] = field(default_factory=list)


def load_book(path: Path) -> BookSpec:
    """Read and check a book file (module doc)."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BookFileError(f"{path}: {exc}") from None
    rows = doc.get("strategy") or []
    if not rows:
        raise BookFileError(f"{path}: no [[strategy]] entries")
    try:
        limits = PortfolioLimits(**(doc.get("limits") or {}))
    except ValueError as exc:
        raise BookFileError(f"{path}: [limits]: {' '.join(str(exc).split())}") from None
    members = []
    for i, row in enumerate(rows):
        if "name" not in row or "data" not in row:
            raise BookFileError(f"{path}: strategy {i + 1} needs a name and a data file")
        bars = load_csv(path.parent / str(row["data"]))
        cap = row.get("capital")
        members.append(
            Member(
                str(row["name"]),
                dict(row.get("params") or {}),
                bars,
                Decimal(str(cap)) if cap is not None else None,
                f"book-{i + 1}-{row['name']}",
            )
        )
    first = members[0].bars
    for m in members[1:]:
        if len(m.bars) != len(first) or not np.array_equal(m.bars.ts, first.ts):
            raise BookFileError(f"{path}: {m.name}'s data has other bar times than the first's")
    method = str(doc.get("allocation", "equal"))
    if method not in ("fixed", "equal", "inverse-vol"):
        raise BookFileError(f"{path}: allocation {method!r}: fixed, equal or inverse-vol")
    return BookSpec(
        Decimal(str(doc.get("cash", 10000))),
        method,
        Decimal(str(doc.get("max_share", 1))),
        limits,
        members,
    )


def _volatility(bars: Bars) -> float:
    r = np.diff(np.log(bars.close))
    return float(np.std(r)) if len(r) > 1 else math.nan


def run_book(
    engine: Engine, spec: BookSpec, *, settings: Settings, limits: GuardLimits | None = None
) -> dict[str, Any]:
    """Run the book (module doc) in `engine` (a scratch database); returns the report."""
    keys = [m.key for m in spec.members]
    fixed = {m.key: m.capital or ZERO for m in spec.members}
    vols = {m.key: _volatility(m.bars) for m in spec.members}
    capital = allocate(
        spec.allocation,  # type: ignore[arg-type]
        keys,
        spec.cash,
        fixed=fixed,
        vols=vols,
        max_share=spec.max_share,
    )
    portfolio = PortfolioGuard(spec.limits)
    lim = limits or GuardLimits()
    sessions = []
    for m in spec.members:
        quotes = ReplayQuotes()
        session = open_paper_session(
            engine,
            make_strategy(m.name, m.params),
            (m.bars.symbol,),
            quotes,
            account=m.key,
            settings=settings,
            limits=lim,
            cash=capital[m.key],
            guard=LayeredGuard(lim, portfolio, m.key),
        )
        portfolio.attach(m.key, session.state)
        sessions.append((m, session, quotes))
    _take_turns(sessions)
    return _report(spec, sessions, capital)


def _take_turns(sessions: list[Any]) -> None:
    """Each session replays in its own thread; within a bar they act in turn (k = 0…K-1)."""
    k_all, n = len(sessions), len(sessions[0][0].bars)
    turn = [0]
    cond = threading.Condition()
    errors: list[BaseException] = []

    def wait_for(t: int) -> None:
        with cond:
            cond.wait_for(lambda: turn[0] >= t or bool(errors))

    def done() -> None:
        with cond:
            turn[0] += 1
            cond.notify_all()

    def run(k: int, member: Member, session: Any, quotes: ReplayQuotes) -> None:
        try:
            wait_for(k)

            def on_bar(i: int) -> None:
                if i + 1 < n:  # the last bar's turn ends after the journal is closed
                    done()
                    wait_for((i + 1) * k_all + k)

            try:
                session.replay(member.bars, quotes, on_bar=on_bar)
            finally:
                session.close()
            while True:  # end this turn, and pass the remaining ones (stopped early)
                with cond:
                    if turn[0] >= n * k_all:
                        return
                    mine = turn[0] % k_all == k
                if mine:
                    done()
                else:
                    wait_for(turn[0] + 1)
        except BaseException as exc:
            errors.append(exc)
            with cond:
                cond.notify_all()

    threads = [
        threading.Thread(target=run, args=(k, m, s, q), daemon=True)
        for k, (m, s, q) in enumerate(sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _report(spec: BookSpec, sessions: list[Any], capital: dict[str, Decimal]) -> dict[str, Any]:
    parts = []
    curve: list[Decimal] = []
    for m, session, _ in sessions:
        summary = session_summary(session)
        equity = [eq for _, eq in session.state.book.equity_curve]
        curve = [a + b for a, b in zip(curve, equity, strict=False)] if curve else equity
        parts.append(
            {
                "strategy": m.name,
                "account": m.key,
                "symbol": m.bars.symbol,
                "capital": capital[m.key],
                "final_equity": summary["equity"],
                "contribution": summary["equity"] - capital[m.key],
                "trades": summary["trades"],
                "denials": summary["denials"],
            }
        )
    start = sum(capital.values(), ZERO)
    final = sum((p["final_equity"] for p in parts), ZERO)
    peak, max_dd = ZERO, ZERO
    for eq in curve:
        peak = max(peak, eq)
        if peak > 0:
            max_dd = max(max_dd, (peak - eq) / peak)
    return {
        "capital": start,
        "unallocated": spec.cash - start,
        "final_equity": final,
        "total_return": (final - start) / start if start else ZERO,
        "max_drawdown": max_dd,
        "strategies": parts,
        "limits": spec.limits.model_dump(mode="json", exclude_none=True),
        "allocation": spec.allocation,
    }
