"""The backtest report: one self-contained HTML page (matplotlib PNGs embedded as data URIs,
no network) with metrics against buy-and-hold, equity and drawdown charts, and the trades
marked on the price chart."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from omc.core.htmlpage import fmt, png_data_uri
from omc.floor.backtest.engine import BacktestResult
from omc.floor.backtest.metrics import buy_and_hold

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2330;background:#fafbfc;padding:0 1rem}
h2{margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.9rem;background:#fff}
th,td{border:1px solid #e3e6ea;padding:.35rem .6rem;text-align:right}th{background:#f1f3f6}
td:first-child{text-align:left}img{max-width:100%}
"""

__all__ = ["ROWS", "charts", "fmt", "render", "write_report"]

MAX_POINTS = 5000
ROWS = [
    ("final_equity", "Final equity", "{:,.2f}"),
    ("total_return", "Total return", "{:.2%}"),
    ("cagr", "CAGR", "{:.2%}"),
    ("volatility_ann", "Volatility (ann.)", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"),
    ("max_drawdown_duration_days", "Max DD duration (days)", "{:.1f}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("trades", "Trades", "{}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("profit_factor", "Profit factor", "{:.2f}"),
    ("avg_trade", "Average trade", "{:,.2f}"),
    ("exposure", "Exposure", "{:.1%}"),
    ("turnover", "Turnover (×)", "{:.1f}"),
    ("fees_paid", "Fees paid", "{:,.2f}"),
]


def _png(fig: Any) -> str:
    return png_data_uri(fig, dpi=90)


def _step(n: int) -> int:
    return max(1, n // MAX_POINTS)


def charts(result: BacktestResult) -> dict[str, str]:
    """Equity (vs buy-and-hold), drawdown and price-with-trades charts as PNG data URIs."""
    times = pd.to_datetime(result.ts, unit="ns", utc=True)
    k = _step(len(times))
    eq = result.equity
    bh, _, _ = buy_and_hold(result)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.plot(times[::k], eq[::k], label="strategy", lw=1.2)
    ax.plot(times[::k], bh[::k], label="buy & hold", lw=1, alpha=0.7)
    ax.set_ylabel("equity")
    ax.legend()
    ax.grid(alpha=0.3)
    out = {"equity": _png(fig)}
    dd = eq / np.maximum.accumulate(eq) - 1.0
    fig, ax = plt.subplots(figsize=(11, 2.4))
    ax.fill_between(times[::k], dd[::k] * 100, 0, color="tab:red", alpha=0.4)
    ax.set_ylabel("drawdown %")
    ax.grid(alpha=0.3)
    out["drawdown"] = _png(fig)
    sym, bars = next(iter(result.bars.items()))
    close = bars.close[result.start :]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.plot(times[::k], close[::k], color="#555", lw=0.8, label=sym)
    trades = [t for t in result.trades if t.symbol == sym]
    if trades:
        ent = [t.entry_index - result.start for t in trades]
        ax.scatter(
            times[ent],
            bars.close[[t.entry_index for t in trades]],
            marker="^",
            color="tab:green",
            s=22,
            label="entry",
            zorder=3,
        )
        closed = [t for t in trades if t.exit_index is not None]
        if closed:
            ex = [int(t.exit_index or 0) for t in closed]
            ax.scatter(
                times[[e - result.start for e in ex]],
                bars.close[ex],
                marker="v",
                color="tab:red",
                s=22,
                label="exit",
                zorder=3,
            )
    ax.set_ylabel("price")
    ax.legend()
    ax.grid(alpha=0.3)
    out["price"] = _png(fig)
    return out


def render(result: BacktestResult) -> str:
    """The report page as an HTML string."""
    img = charts(result)
    rows = "".join(
        f"<tr><td>{label}</td><td>{fmt(result.metrics.get(key), pat)}</td>"
        f"<td>{fmt(result.benchmark.get(key), pat)}</td></tr>"
        for key, label, pat in ROWS
    )
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    title = html.escape(f"{result.strategy}({params}) on {', '.join(result.bars)}")
    recent = result.trades[-50:]
    body_rows = "".join(
        f"<tr><td>{t.entry_time:%Y-%m-%d %H:%M}</td>"
        f"<td>{t.exit_time.strftime('%Y-%m-%d %H:%M') if t.exit_time else 'open'}</td>"
        f"<td>{t.side}</td><td>{float(t.quantity):.8f}</td>"
        f"<td>{float(t.entry_price):,.6g}</td>"
        f"<td>{'' if t.exit_price is None else f'{float(t.exit_price):,.6g}'}</td>"
        f"<td>{float(t.fees):,.2f}</td><td>{float(t.pnl):,.2f}</td></tr>"
        for t in recent
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Backtest: {title}</title><style>{STYLE}</style></head><body>
<h1>Backtest</h1><p>{title} · {len(result.equity):,} bars · fees {result.fees.taker_bps} bps
taker / {result.fees.maker_bps} bps maker · slippage {result.slippage.bps} bps</p>
<h2>Metrics</h2><table><tr><th>Metric</th><th>Strategy</th><th>Buy &amp; hold</th></tr>
{rows}</table>
<h2>Equity</h2><img alt="equity" src="{img["equity"]}">
<h2>Drawdown</h2><img alt="drawdown" src="{img["drawdown"]}">
<h2>Trades on price</h2><img alt="price and trades" src="{img["price"]}">
<h2>Last {len(recent)} trades</h2><table><tr><th>Entry</th><th>Exit</th><th>Side</th>
<th>Quantity</th><th>Entry price</th><th>Exit price</th><th>Fees</th><th>P&amp;L</th></tr>
{body_rows}</table></body></html>"""


def write_report(result: BacktestResult, path: Path) -> Path:
    path.write_text(render(result), encoding="utf-8")
    return path
