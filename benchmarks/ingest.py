"""Ingest benchmark: the project's upsert path vs a naive one-ORM-object-per-row baseline.

    python benchmarks/ingest.py [--rows N] [--naive-rows N] [--pg-url URL] [--json]

For SQLite (a fresh file in a temp dir) and PostgreSQL (a fresh schema, dropped at the end),
and for candles and ticks, it measures:

* the first upsert of `--rows` generated rows (rows/s, inserted count),
* a re-upsert of the same rows (rows/s; must insert nothing),
* memory: peak RSS growth during the first upsert, and the tracemalloc peak of the Python
  side (on a separate re-upsert pass, since tracing slows everything down), each read once
  the first `--mark-rows` rows were consumed and again at the end: equal numbers = memory
  flat in the number of rows,
* the naive baseline on `--naive-rows` rows: `session.merge()` per ORM object, committing
  every 1,000 (the idempotent way to write it with the ORM), plus plain `session.add()`.

Rows are generated lazily (a generator, never a list) the way our parsers produce them:
exact `Decimal`s, aware UTC timestamps, many symbols / coins sharing each poll's timestamp.
Every rate includes generating the rows (the "generator only" line shows that cost).
When PostgreSQL is unreachable its rows are skipped with the reason.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.orm import Session

from omc.core.db import make_engine
from omc.core.db_types import Base
from omc.core.upsert import upsert
from omc.ledgers.models import Candle, Tick
from omc.migrations import upgrade

DEFAULT_PG_URL = os.environ.get(
    "OMC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2023, 1, 1, tzinfo=UTC)
TARGET_RATE = 100_000
TARGET_SPEEDUP = 20.0

# --------------------------------------------------------------------------- row generators

# (symbol, starting price in ticks, decimal places) — prices as exchanges quote them.
_MARKETS = [
    ("BTC/USDT", 4_325_012, 2),
    ("ETH/USDT", 228_034, 2),
    ("SOL/USDT", 10_234, 2),
    ("BNB/USDT", 31_245, 2),
    ("XRP/USDT", 62_345, 5),
    ("ADA/USDT", 45_678, 5),
    ("DOGE/USDT", 812_345, 7),
    ("SHIB/USDT", 5_330, 8),
    ("AVAX/USDT", 3_456, 2),
    ("LINK/USDT", 1_456_789, 5),
]


def _walk(seed: int) -> tuple[list[int], list[Decimal]]:
    rng = random.Random(seed)
    steps = [rng.randint(-40, 40) for _ in range(4099)]
    volumes = [Decimal(rng.randint(1, 10**9)).scaleb(-6) for _ in range(4001)]
    return steps, volumes


def candles(n: int) -> Iterator[dict[str, Any]]:
    """`n` closed 1m candles: every market's candle for a minute, then the next minute."""
    steps, volumes = _walk(7)
    state: list[list[Any]] = [
        [symbol, price, Decimal(10) ** -places] for symbol, price, places in _MARKETS
    ]
    ts, minute, k, produced = T0, timedelta(minutes=1), 0, 0
    while True:
        for market in state:
            if produced >= n:
                return
            symbol, price, quantum = market
            close = price + steps[k % 4099]
            high = max(price, close) + abs(steps[(k + 1) % 4099])
            low = min(price, close) - abs(steps[(k + 2) % 4099])
            market[1] = close
            yield {
                "exchange": "binance",
                "symbol": symbol,
                "timeframe": "1m",
                "ts": ts,
                "open": price * quantum,
                "high": high * quantum,
                "low": low * quantum,
                "close": close * quantum,
                "volume": volumes[k % 4001],
                "source": "import",
            }
            k += 3
            produced += 1
        ts += minute


_COINS = [symbol.split("/")[0] for symbol, _, _ in _MARKETS] + ["LTC", "DOT"]


def ticks(n: int) -> Iterator[dict[str, Any]]:
    """`n` ticks: a poll of every coin's bid/ask/last every 10 s (one `ts` per poll)."""
    steps, volumes = _walk(11)
    prices: list[list[Any]] = [
        [coin, 100_000 + 7_919 * i, Decimal("0.0001")] for i, coin in enumerate(_COINS)
    ]
    ts, step, k, produced = T0, timedelta(seconds=10, microseconds=123_000), 0, 0
    while True:
        for quote in prices:
            if produced >= n:
                return
            coin, last, quantum = quote
            last += steps[k % 4099]
            quote[1] = last
            spread = 1 + abs(steps[(k + 1) % 4099]) // 8
            yield {
                "source": "coinspot",
                "coin": coin,
                "market": "AUD",
                "ts": ts,
                "bid": (last - spread) * quantum,
                "ask": (last + spread) * quantum,
                "last": last * quantum,
                "volume": volumes[k % 4001],
            }
            k += 2
            produced += 1
        ts += step


GENERATORS: dict[str, tuple[Callable[[int], Iterator[dict[str, Any]]], type[Base]]] = {
    "candles": (candles, Candle),
    "ticks": (ticks, Tick),
}

# --------------------------------------------------------------------------- measuring memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Samples this process's RSS on a thread; `peak` is the high-water mark since start."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    def growth(self) -> int:
        return max(self.peak, _rss_bytes()) - self.base


def _marked(
    rows: Iterable[dict[str, Any]], mark: int, at_mark: Callable[[], None]
) -> Iterator[Any]:
    """Yield `rows`, calling `at_mark` once `mark` rows have been consumed."""
    for count, row in enumerate(rows, 1):
        yield row
        if count == mark:
            at_mark()


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    """A fresh, migrated database: a SQLite file or a PostgreSQL schema."""

    name: str
    url: str
    cleanup: Callable[[], None] = lambda: None

    def engine(self) -> Engine:
        return make_engine(self.url)


def fresh_sqlite(directory: Path, label: str) -> Database:
    url = f"sqlite:///{directory / f'{label}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return Database("SQLite", url)


def fresh_postgres(pg_url: str) -> Database:
    schema = f"omc_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return Database("PostgreSQL", url, drop)


def postgres_problem(pg_url: str) -> str | None:
    try:
        engine = make_engine(pg_url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means "skip PostgreSQL"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


# --------------------------------------------------------------------------- the measurements


@dataclass
class Measurement:
    """One line of the report."""

    database: str
    table: str
    method: str
    rows: int
    seconds: float
    inserted: int | None = None
    cpu_seconds: float | None = None
    rss_growth_mark: int | None = None
    rss_growth_end: int | None = None
    py_peak_mark: int | None = None
    py_peak_end: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _count(engine: Engine, model: type[Base]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def measure_upsert(
    db: Database, table: str, rows: int, mark: int, batch_size: int
) -> list[Measurement]:
    """First upsert, re-upsert (both untraced), then a traced re-upsert for Python memory."""
    generate, model = GENERATORS[table]
    engine = db.engine()
    out: list[Measurement] = []
    try:
        for method in ("upsert: first", "upsert: again"):
            gc.collect()
            marks: dict[str, int] = {}
            with RssSampler() as rss:

                def at_mark(rss: RssSampler = rss, marks: dict[str, int] = marks) -> None:
                    marks.setdefault("rss", rss.growth())

                stream = _marked(generate(rows), mark, at_mark)
                start, cpu = time.perf_counter(), time.process_time()
                result = upsert(engine, _table(model), stream, batch_size=batch_size)
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            m = Measurement(db.name, table, method, rows, seconds, result.inserted, cpu)
            m.rss_growth_mark, m.rss_growth_end = marks.get("rss"), rss.growth()
            if result.total != rows:
                m.notes.append(f"counted {result.total} rows, expected {rows}")
            out.append(m)
        stored = _count(engine, model)
        if stored != rows:
            out[0].notes.append(f"{stored} rows stored, expected {rows}")

        gc.collect()
        tracemalloc.start()
        try:
            peaks: dict[str, int] = {}
            stream = _marked(
                generate(rows),
                mark,
                lambda: peaks.__setitem__("mark", tracemalloc.get_traced_memory()[1]),
            )
            upsert(engine, _table(model), stream, batch_size=batch_size)
            peaks["end"] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        for m in out:
            m.py_peak_mark, m.py_peak_end = peaks.get("mark"), peaks["end"]
    finally:
        engine.dispose()
    return out


def measure_naive(db: Database, table: str, rows: int) -> list[Measurement]:
    """One ORM object per row through a Session: `merge` (idempotent) and plain `add`."""
    generate, model = GENERATORS[table]
    engine = db.engine()
    out: list[Measurement] = []
    try:
        for method, how in (("naive ORM: merge", "merge"), ("naive ORM: add", "add")):
            with engine.begin() as conn:
                conn.execute(_table(model).delete())
            gc.collect()
            start, cpu = time.perf_counter(), time.process_time()
            with Session(engine) as session:
                put = session.merge if how == "merge" else session.add
                for count, row in enumerate(generate(rows), 1):
                    put(model(**row))
                    if count % 1000 == 0:
                        session.commit()
                        session.expunge_all()
                session.commit()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            inserted = _count(engine, model)
            out.append(Measurement(db.name, table, method, rows, seconds, inserted, cpu))
    finally:
        engine.dispose()
    return out


def generator_rate(rows: int) -> dict[str, float]:
    """Rows/s of the generators alone (a floor under every measured rate)."""
    rates = {}
    for table, (generate, _model) in GENERATORS.items():
        start = time.perf_counter()
        for _row in generate(rows):
            pass
        rates[table] = rows / (time.perf_counter() - start)
    return rates


# --------------------------------------------------------------------------- reporting


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _mb(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.1f}"


def verdicts(results: list[Measurement]) -> list[tuple[str, bool, str]]:
    """(target, met?, evidence) for every database × table measured."""
    checks: list[tuple[str, bool, str]] = []
    keys = sorted({(m.database, m.table) for m in results})
    for database, table in keys:
        group = {m.method: m for m in results if (m.database, m.table) == (database, table)}
        first, again = group.get("upsert: first"), group.get("upsert: again")
        naive = group.get("naive ORM: merge")
        where = f"{database} {table}"
        if first and again:
            slowest = min(first.rate, again.rate)
            checks.append(
                (f"{where}: ≥ {TARGET_RATE:,} rows/s", slowest >= TARGET_RATE, f"{slowest:,.0f}")
            )
            checks.append(
                (
                    f"{where}: re-upsert inserts nothing, as fast",
                    again.inserted == 0 and again.rate >= 0.9 * first.rate,
                    f"inserted {again.inserted}, {again.rate / first.rate:.2f}× first",
                )
            )
            if first.py_peak_mark is not None and first.py_peak_end is not None:
                flat = first.py_peak_end <= first.py_peak_mark * 1.2 + 4 * 2**20
                checks.append(
                    (
                        f"{where}: memory flat in rows",
                        flat,
                        f"py peak {_mb(first.py_peak_mark)} → {_mb(first.py_peak_end)} MB, "
                        f"RSS +{_mb(first.rss_growth_mark)} → +{_mb(first.rss_growth_end)} MB",
                    )
                )
        if first and naive:
            speedup = first.rate / naive.rate
            checks.append(
                (
                    f"{where}: ≥ {TARGET_SPEEDUP:.0f}× naive",
                    speedup >= TARGET_SPEEDUP,
                    f"{speedup:.0f}×",
                )
            )
    return checks


def report(
    console: Console,
    results: list[Measurement],
    skipped: list[str],
    gen_rates: dict[str, float],
    args: argparse.Namespace,
) -> None:
    table = RichTable(title=f"Ingest: {args.rows:,} rows per table (naive: {args.naive_rows:,})")
    for name, justify in [
        ("database", "left"),
        ("table", "left"),
        ("method", "left"),
        ("rows", "right"),
        ("s", "right"),
        ("CPU s", "right"),
        ("rows/s", "right"),
        ("inserted", "right"),
        (f"RSS Δ MB @{args.mark_rows // 1000}k", "right"),
        ("RSS Δ MB @end", "right"),
        (f"py peak MB @{args.mark_rows // 1000}k", "right"),
        ("py peak MB @end", "right"),
        ("vs naive", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    naive_rates = {(m.database, m.table): m.rate for m in results if m.method == "naive ORM: merge"}
    for m in results:
        base = naive_rates.get((m.database, m.table))
        speedup = f"{m.rate / base:,.0f}×" if base and m.method.startswith("upsert") else ""
        table.add_row(
            m.database,
            m.table,
            m.method + (f" [red]({'; '.join(m.notes)})[/red]" if m.notes else ""),
            f"{m.rows:,}",
            f"{m.seconds:,.2f}",
            "—" if m.cpu_seconds is None else f"{m.cpu_seconds:,.2f}",
            f"{m.rate:,.0f}",
            "—" if m.inserted is None else f"{m.inserted:,}",
            _mb(m.rss_growth_mark) if m.method.startswith("upsert") else "",
            _mb(m.rss_growth_end) if m.method.startswith("upsert") else "",
            _mb(m.py_peak_mark) if m.method == "upsert: first" else "",
            _mb(m.py_peak_end) if m.method == "upsert: first" else "",
            speedup,
        )
    console.print(table)
    console.print(
        "generator only: "
        + ", ".join(f"{name} {rate:,.0f} rows/s" for name, rate in gen_rates.items())
        + "  (every rate above includes generating its rows)"
    )
    console.print(
        "py peak = tracemalloc peak of a separate re-upsert pass (same Python path); "
        "RSS Δ = sampled resident-set growth during the first upsert (includes SQLite's "
        "page cache and driver buffers)."
    )
    console.print(
        "CPU s = this process's CPU time (the PostgreSQL server's is not included). "
        f"Load average before / after: {args.load_before} / {_load()} on {os.cpu_count()} CPUs; "
        "rates are wall-clock, so other work on the machine lowers them."
    )
    for reason in skipped:
        console.print(f"[yellow]skipped:[/yellow] {reason}")
    for target, met, evidence in verdicts(results):
        mark = "[green]✓[/green]" if met else "[red]✗[/red]"
        console.print(f"{mark} {target}: {evidence}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table")
    parser.add_argument("--mark-rows", type=int, default=100_000, help="memory read-out mark")
    parser.add_argument("--naive-rows", type=int, default=20_000, help="rows for the baseline")
    parser.add_argument("--batch-size", type=int, default=50_000, help="upsert batch size")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL URL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--tables", default="candles,ticks", help="comma-separated: candles, ticks")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    args.mark_rows = min(args.mark_rows, args.rows)
    args.load_before = _load()
    tables = [name.strip() for name in args.tables.split(",") if name.strip()]
    unknown = [name for name in tables if name not in GENERATORS]
    if unknown:
        parser.error(f"unknown table(s) {unknown}; choose from {sorted(GENERATORS)}")

    console = Console(stderr=args.json)
    if not console.is_terminal:
        console.width = 200
    results: list[Measurement] = []
    skipped: list[str] = []
    backends: list[str] = []
    if not args.no_sqlite:
        backends.append("sqlite")
    if not args.no_postgres:
        problem = postgres_problem(args.pg_url)
        if problem:
            skipped.append(f"PostgreSQL unreachable at {args.pg_url} — {problem}")
            console.print(f"[yellow]PostgreSQL unreachable, skipping it:[/yellow] {problem}")
        else:
            backends.append("postgresql")

    with tempfile.TemporaryDirectory(prefix="omc-bench-") as tmp:
        for backend in backends:
            for table in tables:
                for phase in ("upsert", "naive"):
                    label = f"{table}-{phase}"
                    if backend == "sqlite":
                        db = fresh_sqlite(Path(tmp), label)
                    else:
                        db = fresh_postgres(args.pg_url)
                    console.print(f"[dim]{db.name} {table}: {phase}…[/dim]")
                    try:
                        if phase == "upsert":
                            results += measure_upsert(
                                db, table, args.rows, args.mark_rows, args.batch_size
                            )
                        else:
                            results += measure_naive(db, table, args.naive_rows)
                    finally:
                        db.cleanup()
    gen_rates = generator_rate(min(args.rows, 200_000))

    if args.json:
        payload = {
            "rows": args.rows,
            "naive_rows": args.naive_rows,
            "results": [asdict(m) | {"rows_per_s": m.rate} for m in results],
            "generator_rows_per_s": gen_rates,
            "skipped": skipped,
            "load_average": {"before": args.load_before, "after": _load()},
            "targets": [
                {"target": t, "met": met, "evidence": ev} for t, met, ev in verdicts(results)
            ],
        }
        print(json.dumps(payload, indent=2))
    else:
        report(console, results, skipped, gen_rates, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
