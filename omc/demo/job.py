"""The demo job: load the bundled real candles into the configured database (SQLite by
default), backtest a built-in strategy on them, and write one report page to look at.

Everything it shows is labelled demo data: real historical candles bundled with OMC, not live
prices. It needs no network and no keys, and running it again changes nothing (idempotent).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from omc.core.config import Settings
from omc.ledgers.exchange.candle_files import ImportReport, import_candles
from omc.ledgers.status import ledger_status
from omc.web.ledger_report import ledger_sections, write_report

DATA_DIR = Path(__file__).parent / "data" / "candles"
DEMO_EXCHANGE = "demo"
BANNER = (
    "<b>Demo data.</b> These are real historical candles bundled with OMC "
    "(freqtrade test data: BTC/USDT 2023, altcoin/BTC pairs on Bittrex 2018), stored under "
    "the exchange name <code>demo</code>. They are not live prices."
)


@dataclass
class DemoResult:
    report_path: Path
    imports: list[ImportReport] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def bundled_files() -> list[tuple[Path, str, str]]:
    """(path, symbol, timeframe) for every bundled candle file, e.g. BTC_USDT-5m.csv."""
    out = []
    for path in sorted(DATA_DIR.glob("*-*.csv")):
        pair, _, timeframe = path.stem.partition("-")
        if not timeframe.endswith(("m", "h", "d")):
            continue  # trades files are not candles
        out.append((path, pair.replace("_", "/"), timeframe))
    return out


def load_bundled_candles(
    engine: Engine, progress: Callable[[str], None] | None = None
) -> list[ImportReport]:
    reports = []
    for path, symbol, timeframe in bundled_files():
        if progress:
            progress(f"{symbol} {timeframe}")
        reports.append(import_candles(engine, path, DEMO_EXCHANGE, symbol, timeframe))
    return reports


def import_rows(reports: list[ImportReport]) -> list[tuple[Any, ...]]:
    return [
        (
            Path(r.path).name,
            f"{r.symbol} {r.timeframe}",
            f"{r.rows_read:,}",
            f"{r.inserted:,}",
            f"{r.duplicates:,}",
            len(r.bad_rows),
            f"{len(r.gaps)} ({r.missing} bars)",
            r.first.strftime("%Y-%m-%d %H:%M") if r.first else "",
            r.last.strftime("%Y-%m-%d %H:%M") if r.last else "",
        )
        for r in reports
    ]


def run_demo(
    engine: Engine,
    settings: Settings,
    out_dir: Path,
    progress: Callable[[str], None] | None = None,
    extra_sections: Callable[[Engine, Path], list[str]] | None = None,
) -> DemoResult:
    """Load the bundled data and write `out_dir/report.html`. Returns what was done."""
    reports = load_bundled_candles(engine, progress)
    sections = []
    if extra_sections is not None:
        sections += extra_sections(engine, out_dir)
    status = ledger_status(engine, settings)
    sections = ledger_sections(engine, status, import_rows(reports)) + sections
    sections.append(
        "<h2>Next steps</h2><ul>"
        + "".join(
            f"<li><code>{html.escape(cmd)}</code></li>"
            for cmd in (
                "omc status",
                "omc collect --once coinspot   # needs internet",
                "omc data export candles --symbol BTC/USDT --format csv --out btc.csv",
                "omc backtest --exchange demo --symbol BTC/USDT --timeframe 5m --strategy sma_cross",
            )
        )
        + "</ul>"
    )
    path = write_report(out_dir / "report.html", "Oh My Coins — demo report", sections, BANNER)
    return DemoResult(report_path=path, imports=reports)
