"""The Lab end to end: the default goal on a year of 5-minute candles, plan to report.

A temporary SQLite database gets, through the project's write path (`omc.core.upsert.upsert` on
the ledger tables): 105,120 five-minute BTC/USDT candles whose returns are resampled from the
bundled real candles (`omc.floor.data.synthetic`), a year of scored social posts about BTC
(hourly sentiment comes from them, as in production) and a daily DeFiLlama TVL series — each
row stored shortly after the time it describes (`collected_at`), as a live collector would.
Then the planner plans the default goal with sentiment and TVL, and `run_study` runs it:
inputs -> matrix -> labels -> checks -> search -> evaluate -> artifacts -> report -> store.
Prints the time of each step (the imports of the ML libraries included), the total (target
< 60 s on the 2-core machine) and the peak resident memory of the study (the data is stored
by a child process first).

    python benchmarks/lab.py [--trials N] [--bars N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from omc.core.db import make_engine
from omc.core.upsert import upsert
from omc.demo.job import DATA_DIR
from omc.floor.data import Bars, load_csv, synthetic
from omc.ledgers.models import Candle, ProtocolMetric, SocialPost
from omc.migrations import upgrade

BARS = 365 * 24 * 12
GOAL = (
    "Predict whether BTC/USDT closes higher over the next hour from momentum, volatility, "
    "hourly sentiment and TVL"
)
PROTOCOL = "lido"  # a tracked DeFiLlama protocol; the plan names it for BTC's TVL features


def candle_rows(bars: Bars) -> Iterator[dict[str, Any]]:
    step = timedelta(seconds=bars.bar_seconds)
    stamps = [datetime.fromtimestamp(t / 1e9, tz=UTC) for t in bars.ts.tolist()]
    for i, ts in enumerate(stamps):
        yield {
            "exchange": "bench",
            "symbol": "BTC/USDT",
            "timeframe": "5m",
            "ts": ts,
            "open": Decimal(f"{bars.open[i]:.2f}"),
            "high": Decimal(f"{bars.high[i]:.2f}"),
            "low": Decimal(f"{bars.low[i]:.2f}"),
            "close": Decimal(f"{bars.close[i]:.2f}"),
            "volume": Decimal(f"{bars.volume[i]:.6f}"),
            "source": "bench",
            "collected_at": ts + step + timedelta(seconds=3),
        }


def social_rows(bars: Bars, seed: int) -> Iterator[dict[str, Any]]:
    """A few posts an hour; sentiment loosely follows the past hour's return (as crowds do)."""
    rng = np.random.default_rng(seed)
    start = datetime.fromtimestamp(int(bars.ts[0]) / 1e9, tz=UTC)
    hours = len(bars) // 12
    close = bars.close
    for h in range(hours):
        past = np.log(close[h * 12] / close[max(0, h * 12 - 12)])
        for k in range(int(rng.poisson(4))):
            published = start + timedelta(hours=h, seconds=float(rng.uniform(0, 3600)))
            tone = float(np.tanh(past * 200 + rng.normal(0, 0.5)))
            yield {
                "platform": "reddit",
                "post_id": f"b{h}_{k}",
                "parent_id": None,
                "community": "Bitcoin",
                "author": None,
                "title": "BTC",
                "body": None,
                "url": None,
                "score": int(rng.integers(0, 50)),
                "num_comments": int(rng.integers(0, 20)),
                "published_at": published,
                "sentiment": round(tone, 4),
                "coins": ["BTC"],
                "raw": None,
                "collected_at": published + timedelta(minutes=float(rng.uniform(1, 20))),
            }


def tvl_rows(bars: Bars, seed: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed + 1)
    start = datetime.fromtimestamp(int(bars.ts[0]) / 1e9, tz=UTC)
    value = 2.0e10
    for d in range(-10, len(bars) // 288 + 1):
        value *= float(np.exp(rng.normal(0, 0.02)))
        day = start + timedelta(days=d)
        yield {
            "source": "defillama",
            "protocol": PROTOCOL,
            "chain": "",
            "metric": "tvl",
            "ts": day,
            "value": Decimal(f"{value:.0f}"),
            "coins": ["BTC"],
            "collected_at": day + timedelta(days=1, minutes=7),
        }


def store_inputs(url: str, n: int, seed: int) -> dict[str, int]:
    """Migrate the database at `url` and store the candles, posts and TVL rows (run in a child
    process, so the study's peak memory is measured alone)."""
    engine = make_engine(url)
    upgrade(engine)
    source = load_csv(DATA_DIR / "BTC_USDT-5m.csv")
    bars = synthetic(source, n, seed=seed, symbol="BTC/USDT")
    return {
        "candles": upsert(engine, Candle.__table__, candle_rows(bars)).inserted,  # type: ignore[arg-type]
        "social posts": upsert(engine, SocialPost.__table__, social_rows(bars, seed)).inserted,  # type: ignore[arg-type]
        "TVL rows": upsert(engine, ProtocolMetric.__table__, tvl_rows(bars, seed)).inserted,  # type: ignore[arg-type]
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=BARS)
    parser.add_argument("--trials", type=int, default=None, help="default: the planner's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        began = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            stored = pool.submit(store_inputs, url, args.bars, args.seed).result()
        console.print(
            "stored " + ", ".join(f"{n:,} {what}" for what, n in stored.items())
            + f" in {time.perf_counter() - began:.1f} s (setup, not timed below)"
        )  # fmt: skip
        engine = make_engine(url)

        t0 = time.perf_counter()
        from omc.lab import evaluation, features, planner, training  # noqa: F401
        from omc.lab.session.runner import STEPS, prepare_plan, run_study

        import_seconds = time.perf_counter() - t0
        result = prepare_plan(
            GOAL, engine=engine, exchange="bench", timeframe="5m", trials=args.trials
        )
        if result.plan is None:
            raise SystemExit(f"the planner asked: {result.question}")
        plan = result.plan.model_copy(update={"protocol": PROTOCOL})
        plan_seconds = time.perf_counter() - t0 - import_seconds
        outcome = run_study(plan, engine=engine, out_dir=Path(tmp) / "lab")
        total = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        table = Table(title=f"Lab study on {args.bars:,} five-minute bars ({plan.trials} trials)")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        table.add_column("share", justify="right")
        timings = {
            "import (scikit-learn, LightGBM, Optuna, ...)": import_seconds,
            "plan": plan_seconds,
            **{s: outcome.timings.get(s, 0.0) for s in STEPS},
        }
        for step, seconds in timings.items():
            table.add_row(step, f"{seconds:.2f}", f"{seconds / total:.0%}")
        table.add_row("[bold]total (plan to report)", f"[bold]{total:.2f}", "")
        table.add_row("peak memory (resident set)", f"{rss_mb:,.0f} MB", "")
        console.print(table)
        verdict = outcome.verdict or outcome.error
        oos = outcome.to_json()["oos"]
        console.print(
            f"session {outcome.session}: {outcome.status}, verdict {verdict}, "
            f"OOS AUC {oos['auc']}, features {plan.features}",
            highlight=False,
        )
        if outcome.report is not None:
            doc = json.loads((outcome.report.parent / "report.json").read_text())
            checks = ", ".join(f"{c['name']} {c['status']}" for c in doc["checks"])
            console.print(f"checks: {checks}", highlight=False)
        status = "[green]met[/]" if total < 60 and outcome.status == "done" else "[red]missed[/]"
        console.print(f"target < 60 s: {status}")


if __name__ == "__main__":
    main()
