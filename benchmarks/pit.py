"""Point-in-time read speed: one year of 5-minute data through `omc.ledgers.pit`.

Stores 105,120 candles (a year of 5-minute bars) and a year of 5-minute ticks for 3 coins,
then times `pit.candles`, `pit.ticks` and `pit.ledger_stats` on SQLite and PostgreSQL,
next to a plain `pandas.read_sql` of the same rows as the peer. Target: < 1 s per call.

    python benchmarks/pit.py [--pg-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from omc.core.db import make_engine
from omc.core.upsert import upsert
from omc.ledgers import pit
from omc.ledgers.models import Candle, Tick
from omc.migrations import upgrade

BARS = 365 * 24 * 12
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def candles() -> Iterator[dict[str, Any]]:
    price = 30000.0
    for i in range(BARS):
        price *= 1 + ((i * 7919) % 200 - 100) / 100000
        p = Decimal(f"{price:.2f}")
        yield {
            "exchange": "bench",
            "symbol": "BTC/AUD",
            "timeframe": "5m",
            "ts": START + STEP * i,
            "open": p,
            "high": p + 5,
            "low": p - 5,
            "close": p,
            "volume": Decimal("1.5"),
            "source": "bench",
        }


def ticks() -> Iterator[dict[str, Any]]:
    for i in range(BARS):
        for coin in ("btc", "eth", "sol"):
            yield {
                "source": "coinspot",
                "coin": coin,
                "market": "aud",
                "ts": START + STEP * i,
                "bid": Decimal("100.5"),
                "ask": Decimal("100.7"),
                "last": Decimal("100.6"),
                "volume": None,
            }


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - began)
    return best, out


def reads(engine: Engine, as_of: datetime) -> dict[str, tuple[Callable[[], Any], str | None]]:
    """label -> (the OMC call, the peer's SQL for the same rows)."""
    return {
        "candles (1 series, 105,120 bars)": (
            lambda: pit.candles(engine, "bench", "BTC/AUD", "5m", as_of=as_of),
            "SELECT ts, open, high, low, close, volume FROM candles "
            "WHERE symbol = 'BTC/AUD' ORDER BY ts",
        ),
        "ticks (1 coin, 105,120 ticks)": (
            lambda: pit.ticks(engine, as_of=as_of, coin="btc"),
            "SELECT ts, bid, ask, last FROM ticks WHERE coin = 'btc' ORDER BY ts",
        ),
        "ledger_stats (all tables)": (lambda: pit.ledger_stats(engine, as_of=as_of), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    console = Console()
    table = Table(title="point-in-time reads, one year of 5-minute data (best of 3)")
    for column in ("database", "call", "rows", "seconds", "peer pandas.read_sql (s)", "< 1 s"):
        table.add_column(column, justify="right" if column not in ("database", "call") else "left")
    targets: list[tuple[str, str, Callable[[], None]]] = []
    tmp = Path(tempfile.mkdtemp())
    targets.append(("sqlite", f"sqlite:///{tmp / 'pit.db'}", lambda: None))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = make_engine(args.pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

        targets.append(("postgresql", f"{args.pg_url}?options=-csearch_path%3D{schema}", drop))
    except Exception as exc:  # report and go on with SQLite
        console.print(f"[yellow]PostgreSQL skipped: {exc}[/]")
    for name, url, cleanup in targets:
        engine = make_engine(url)
        try:
            upgrade(engine)
            upsert(engine, Candle.__table__, candles())
            upsert(engine, Tick.__table__, ticks())
            as_of = datetime.now(UTC)  # after the writes: everything stored is visible
            calls = reads(engine, as_of)
            for label, (call, peer_sql) in calls.items():
                seconds, frame = best_of(call)
                peer = ""
                if peer_sql:
                    with engine.connect() as conn:
                        peer_s, _ = best_of(lambda sql=peer_sql, c=conn: pd.read_sql(text(sql), c))
                    peer = f"{peer_s:.3f}"
                table.add_row(
                    name,
                    label,
                    f"{len(frame):,}",
                    f"{seconds:.3f}",
                    peer,
                    "[green]yes[/]" if seconds < 1 else "[red]no[/]",
                )
        finally:
            engine.dispose()
            cleanup()
    console.print(table)


if __name__ == "__main__":
    main()
