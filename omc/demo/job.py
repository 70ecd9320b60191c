"""The demo job: load the bundled real candles into the configured database (SQLite by
default), backtest a built-in strategy on them, replay it through paper trading, run one Lab
study on them, and write one report page to look at.

Everything it shows is labelled demo data: real historical candles bundled with OMC, not live
prices. It needs no network and no keys, and running it again changes nothing (idempotent).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from omc.core.config import Settings
from omc.ledgers.exchange.candle_files import ImportReport, import_candles
from omc.ledgers.status import ledger_status
from omc.web.ledger_report import html_table, ledger_sections, write_report

if TYPE_CHECKING:  # numpy and pandas load when the demo runs
    from omc.floor.data import Bars

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


DEMO_STRATEGY = ("sma_cross", {"fast": 12, "slow": 48})
HEADLINE_METRICS = (
    ("total_return", "total return", "{:+.2%}"),
    ("cagr", "CAGR", "{:+.1%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("trades", "trades", "{:,}"),
    ("win_rate", "win rate", "{:.0%}"),
    ("fees_paid", "fees paid", "{:,.2f}"),
)


def demo_bars(engine: Engine) -> Bars:
    """The demo BTC/USDT 5m candles the backtest and the paper replay both run on."""
    from omc.floor.data import load_db

    return load_db(engine, "BTC/USDT", "5m", exchange=DEMO_EXCHANGE)


def backtest_section(bars: Bars, out_dir: Path) -> tuple[str, list[str]]:
    """Backtest the demo strategy on the demo BTC/USDT candles; write its own report too.

    Returns the HTML section for the demo page and summary lines for the terminal.
    """
    from omc.core.htmlpage import fmt
    from omc.floor.backtest.engine import run_backtest
    from omc.floor.backtest.export import write_all
    from omc.floor.strategies import make_strategy
    from omc.web.backtest_report import charts
    from omc.web.backtest_report import write_report as write_backtest_report

    name, params = DEMO_STRATEGY
    result = run_backtest(make_strategy(name, params), bars, cash=Decimal(10000))
    folder = out_dir / "backtest"
    write_all(result, folder)
    report = write_backtest_report(result, folder / "report.html")
    images = charts(result)

    def cell(key: str, pattern: str, source: dict[str, Any]) -> str:
        value = source.get(key)
        return "" if value is None else fmt(value, pattern)

    rows = [
        (label, cell(key, pattern, result.metrics), cell(key, pattern, result.benchmark))
        for key, label, pattern in HEADLINE_METRICS
    ]
    rows.insert(
        0,
        (
            "final equity",
            f"{result.final_equity:,.2f}",
            cell("final_equity", "{:,.2f}", result.benchmark),
        ),
    )
    label = f"{name} ({', '.join(f'{k}={v}' for k, v in params.items())})"
    section = (
        f"<h2>Backtest: {html.escape(label)} on demo BTC/USDT 5m</h2>"
        "<p>10,000 USDT, CoinSpot's 0.1 % taker fee, market orders filled at the next bar's open. "
        f"Full report: <a href='{html.escape(report.relative_to(out_dir).as_posix())}'>"
        "backtest/report.html</a> "
        "(trades.csv, equity.csv and metrics.json beside it).</p>"
        + html_table(["", "strategy", "buy & hold"], rows, numeric=(1, 2))
        + f"<img alt='equity' src='{images['equity']}'>"
    )
    summary = [
        f"backtest {label} on demo BTC/USDT 5m: final equity {result.final_equity:,.2f} USDT "
        f"({cell('total_return', '{:+.2%}', result.metrics)}; buy & hold "
        f"{cell('total_return', '{:+.2%}', result.benchmark)}), {len(result.trades)} trades",
        f"backtest report: {report.resolve().as_uri()}",
    ]
    return section, summary


LAB_GOAL = (
    "Predict whether BTC/USDT closes higher one hour (12 bars) from now, "
    "from momentum, volatility, RSI and volume"
)
LAB_TRIALS = 6  # a small search budget keeps the demo quick; `omc lab run` defaults to more


def lab_section(engine: Engine, settings: Settings, out_dir: Path) -> tuple[str, list[str]]:
    """One Lab study on the demo BTC/USDT candles (a small trial budget), linked from the
    demo page. A study of the same goal already run on this database is shown again rather
    than re-run: running the demo twice changes nothing and never re-opens its holdout."""
    import os

    from omc.lab.session.runner import outcome_of, prepare_plan, run_study
    from omc.lab.session.store import list_sessions

    done = [
        r
        for r in list_sessions(engine, limit=500)
        if r.goal == LAB_GOAL
        and r.status == "done"
        and r.report_path
        and Path(r.report_path).is_file()
    ]
    if done:
        outcome = outcome_of(done[0])
    else:
        result = prepare_plan(
            LAB_GOAL,
            engine=engine,
            symbol="BTC/USDT",
            exchange=DEMO_EXCHANGE,
            timeframe="5m",
            horizon_bars=12,
            trials=LAB_TRIALS,
        )
        if result.plan is None:
            raise RuntimeError(f"the demo goal needs an answer: {result.question}")
        outcome = run_study(result.plan, engine=engine, out_dir=settings.data_dir / "lab")
    if outcome.status != "done" or outcome.report is None:
        section = (
            "<h2>Lab study</h2><p class='bad'>The Lab session "
            f"{html.escape(outcome.session)} failed: {html.escape(str(outcome.error))}</p>"
        )
        return section, [f"lab session {outcome.session} failed: {outcome.error}"]
    link = Path(os.path.relpath(outcome.report, out_dir)).as_posix()
    oos = outcome.to_json()["oos"]
    rows = [
        ("verdict", outcome.verdict),
        *((f"out-of-sample {k}", "" if v is None else f"{v:.3f}") for k, v in oos.items()),
        ("trials (all counted)", outcome.trials),
    ]
    section = (
        "<h2>Lab study: a goal in words, evaluated honestly</h2>"
        f"<p>Goal: <i>{html.escape(LAB_GOAL)}</i>. Lab session "
        f"<code>{html.escape(outcome.session)}</code> planned it, built causal features on the "
        f"demo candles, searched {outcome.trials} trials (a small demo budget) on purged "
        "walk-forward folds and scored a sealed holdout once. Every number is out of sample. "
        f"Full report: <a href='{html.escape(link)}'>{html.escape(link)}</a>.</p>"
        + html_table(["", "value"], rows, numeric=(1,))
        + "<ul>"
        + "".join(f"<li>{html.escape(r)}</li>" for r in outcome.reasons)
        + "</ul>"
    )
    summary = [
        f"lab session {outcome.session}: verdict {outcome.verdict}, OOS AUC "
        f"{oos['auc'] if oos['auc'] is None else format(oos['auc'], '.3f')}, "
        f"{outcome.trials} trials",
        f"lab report: {outcome.report.resolve().as_uri()}",
    ]
    return section, summary


PAPER_ACCOUNT = "demo-paper"


def paper_section(engine: Engine, settings: Settings, bars: Bars) -> tuple[str, list[str]]:
    """Replay the demo BTC/USDT candles through paper trading (Guard, journal, P&L)."""
    from omc.floor.strategies import make_strategy
    from omc.floor.trading.guard import GuardSettings
    from omc.floor.trading.paper_session import replay_paper

    name, params = DEMO_STRATEGY
    summary = replay_paper(
        engine,
        make_strategy(name, params),
        bars,
        account=PAPER_ACCOUNT,
        settings=settings,
        limits=GuardSettings().limits(),
        cash=Decimal(10000),
    )
    labels = (
        ("initial_cash", "initial cash"),
        ("cash", "cash"),
        ("equity", "equity"),
        ("realised_pnl", "realised P&L (average cost)"),
        ("unrealised_pnl", "unrealised P&L"),
        ("fees", "fees"),
        ("net_pnl", "net P&L"),
        ("trades", "fills"),
    )
    rows = [
        (label, f"{summary[key]:,.2f}" if isinstance(summary[key], Decimal) else summary[key])
        for key, label in labels
    ]
    denials = summary.get("denials") or {}
    section = (
        "<h2>Paper trading replay</h2>"
        f"<p>The same strategy object, replayed bar by bar through the Guard and the paper "
        f"venue (a decision at a bar's close fills at the next bar's open plus fees, as in "
        f"the backtest), every decision journaled under account <code>{PAPER_ACCOUNT}</code>. "
        f"Unlike the plain backtest, every order must pass the Guard's limits "
        f"(<code>OMC_GUARD_*</code>), so sizes can differ; <code>omc backtest --guard</code> "
        f"applies the same limits and makes the same fills. "
        f"See <code>omc pnl</code>, <code>omc positions</code>, <code>omc orders</code>.</p>"
        + html_table(["", "value"], rows, numeric=(1,))
        + (
            "<p>Guard denials: "
            + html.escape(", ".join(f"{code}: {n}" for code, n in sorted(denials.items())))
            + "</p>"
            if denials
            else "<p>Guard denials: none.</p>"
        )
    )
    line = (
        f"paper replay ({PAPER_ACCOUNT}): equity {summary['equity']:,.2f}, net P&L "
        f"{summary['net_pnl']:,.2f}, fees {summary['fees']:,.2f}, {summary['trades']} fills"
    )
    return section, [line]


def run_demo(
    engine: Engine,
    settings: Settings,
    out_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Load the bundled data and write `out_dir/report.html`. Returns what was done."""
    reports = load_bundled_candles(engine, progress)
    if progress:
        progress("backtest")
    bars = demo_bars(engine)
    backtest_html, summary = backtest_section(bars, out_dir)
    if progress:
        progress("paper trading")
    paper_html, paper_summary = paper_section(engine, settings, bars)
    summary += paper_summary
    if progress:
        progress("lab study")
    lab_html, lab_summary = lab_section(engine, settings, out_dir)
    summary += lab_summary
    status = ledger_status(engine, settings)
    sections = ledger_sections(engine, status, import_rows(reports))
    sections[1:1] = [backtest_html, paper_html, lab_html]
    sections.append(
        "<h2>Next steps</h2><ul>"
        + "".join(
            f"<li><code>{html.escape(cmd)}</code></li>"
            for cmd in (
                "omc status",
                "omc collect --once coinspot   # needs internet",
                "omc data export candles --symbol BTC/USDT --format csv --out btc.csv",
                "omc backtest --exchange demo --symbol BTC/USDT --timeframe 5m "
                "--strategy sma_cross",
                'omc lab run "predict BTC/USDT direction over the next hour" '
                "--exchange demo --timeframe 5m",
                "omc lab sessions",
            )
        )
        + "</ul>"
    )
    path = write_report(out_dir / "report.html", "Oh My Coins — demo report", sections, BANNER)
    return DemoResult(report_path=path, imports=reports, extra={"summary": summary})
