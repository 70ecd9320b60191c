"""API read benchmark: latest prices, a candles page and an account's P&L at a fixed request
rate from a separate load process, against `omc serve`, on SQLite and PostgreSQL.

    python benchmarks/api.py [--rate 200] [--seconds 30] [--db sqlite|postgresql|both]
                             [--pg-url URL] [--json]

For each database it builds a fresh installation (a temp data dir; PostgreSQL: a fresh
database, dropped at the end): migrated, the bundled BTC/USDT 5m candles imported, ticks of 20
coins, a user, and a paper account whose session replayed the candles (its journal is what
P&L reads). It starts `omc serve` in its own process and then, from this process, sends the
three reads round-robin *open loop*: request i leaves at start + i/rate whatever the answers
before it did (asyncio + httpx, one connection pool), so a slow server cannot slow the
offered rate down. Latency is measured from the request's send to its full response; errors
are non-200 answers and failed requests. It reports p50/p99 per endpoint and overall, the
errors, and the rate really achieved (requests completed / seconds). Target: p99 < 50 ms,
0 errors, at 200 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
SECRET = "benchmark-secret-key-0123456789-abcdefghij"
PASSWORD = "bench-pass-Qx81!z"
ACCOUNT = "bench-paper"
REPLAY_BARS = 2000  # the paper account's journal: what P&L reads
PG_URL = os.environ.get(
    "OMC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, data_dir: Path) -> None:
    """Migrate, import the candles, store ticks, create the user and the paper account."""
    from omc.api.auth.users import create_user
    from omc.api.services import accounts
    from omc.core.config import Settings
    from omc.core.db import make_engine
    from omc.core.upsert import upsert
    from omc.floor.data import load_csv
    from omc.floor.strategies import make_strategy
    from omc.floor.trading.guard import GuardSettings
    from omc.floor.trading.paper_session import replay_paper
    from omc.ledgers.exchange.candle_files import import_candles
    from omc.ledgers.models import Tick
    from omc.migrations import upgrade

    engine = make_engine(url)
    upgrade(engine)
    import_candles(engine, CSV, "demo", "BTC/USDT", "5m")
    now = datetime.now(UTC)
    ticks = [
        {
            "source": "coinspot",
            "coin": f"c{c:02d}",
            "market": "aud",
            "ts": now - timedelta(seconds=60 * k),
            "bid": Decimal(100 + c),
            "ask": Decimal(101 + c),
            "last": Decimal("100.5") + c,
            "volume": None,
            "collected_at": now - timedelta(seconds=60 * k),
        }
        for c in range(20)
        for k in range(60)
    ]
    upsert(engine, Tick.__table__, ticks)  # type: ignore[arg-type]
    user = create_user(engine, "bench", PASSWORD, admin=False)
    accounts.create(engine, user.id, ACCOUNT, mode="paper", cash=Decimal(10000))
    settings = Settings(data_dir=data_dir, database_url=url)
    strategy = make_strategy("sma_cross", {"fast": 10, "slow": 30})
    replay_paper(
        engine,
        strategy,
        load_csv(CSV, "BTC/USDT").slice(0, REPLAY_BARS),
        account=ACCOUNT,
        settings=settings,
        limits=GuardSettings().limits(),
        cash=Decimal(10000),
    )
    engine.dispose()


def serve(url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OMC_DATABASE_URL": url,
        "OMC_DATA_DIR": str(data_dir),
        "OMC_SECRET_KEY": SECRET,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from omc.cli.app import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data_dir / "serve.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"omc serve did not start: {(data_dir / 'serve.log').read_text()[-500:]}")


async def load(base: str, token: str, rate: float, seconds: float) -> dict[str, Any]:
    paths = {
        "prices": "/api/v1/ledgers/prices/latest",
        "candles": "/api/v1/ledgers/candles?exchange=demo&symbol=BTC/USDT&timeframe=5m&limit=200",
        "pnl": f"/api/v1/accounts/{ACCOUNT}/pnl?points=200",
    }
    names = list(paths)
    latencies: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, int] = {n: 0 for n in names}
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for name in names:  # warm up every path once
            await client.get(paths[name])

        async def one(name: str) -> None:
            sent = time.perf_counter()
            try:
                res = await client.get(paths[name])
                ok = res.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies[name].append(time.perf_counter() - sent)
            else:
                errors[name] += 1

        total = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(names[i % len(names)])))
        sent_for = time.perf_counter() - start
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    every = [x for n in names for x in latencies[n]]
    return {
        "offered_rps": rate,
        "sent_rps": total / sent_for,
        "achieved_rps": len(every) / elapsed,
        "requests": total,
        "errors": sum(errors.values()),
        "p50_ms": 1000 * statistics.median(every) if every else None,
        "p99_ms": 1000 * quantile(every, 0.99) if every else None,
        "endpoints": {
            n: {
                "p50_ms": 1000 * statistics.median(latencies[n]) if latencies[n] else None,
                "p99_ms": 1000 * quantile(latencies[n], 0.99) if latencies[n] else None,
                "errors": errors[n],
            }
            for n in names
        },
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_one(db: str, rate: float, seconds: float, pg_url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    tmp = Path(tempfile.mkdtemp(prefix="omc-bench-api-"))
    admin = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'omc.db'}"
    else:
        name = f"omc_bench_api_{os.getpid()}"
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        seed(url, tmp)
        port = free_port()
        proc = serve(url, tmp, port)
        try:
            base = f"http://127.0.0.1:{port}"
            token = httpx.post(
                f"{base}/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}
            ).json()["access_token"]
            result = asyncio.run(load(base, token, rate, seconds))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(
                    text(f'DROP DATABASE IF EXISTS "omc_bench_api_{os.getpid()}" WITH (FORCE)')
                )
            admin.dispose()
    return {"db": db, **result}


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| database | endpoint | p50 ms | p99 ms | errors | achieved req/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        for name, e in r["endpoints"].items():
            out.append(
                f"| {r['db']} | {name} | {e['p50_ms']:.1f} | {e['p99_ms']:.1f} | {e['errors']} | |"
            )
        out.append(
            f"| {r['db']} | **all** | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} | {r['achieved_rps']:.1f} (offered {r['offered_rps']:g}, "
            f"sent {r['sent_rps']:.1f}) |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="Requests per second.")
    parser.add_argument("--seconds", type=float, default=30.0, help="How long (a shorter run).")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dbs = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    rows = []
    for db in dbs:
        rows.append(run_one(db, args.rate, args.seconds, args.pg_url))
        print(json.dumps(rows[-1]) if args.json else table(rows[-1:]), flush=True)


if __name__ == "__main__":
    main()
