"""The ledger report: one self-contained HTML page (charts embedded, no network) showing what
the ledgers hold and how the collectors are doing."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from sqlalchemy import Engine, select

from omc.core.time import utcnow
from omc.ledgers.models import Candle

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;
color:#1d2330;background:#fafbfc;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
.banner{background:#fff4d6;border:1px solid #f0c36d;padding:.6rem 1rem;border-radius:6px;
margin:1rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem;background:#fff}
th,td{border:1px solid #e3e6ea;padding:.35rem .6rem;text-align:left}th{background:#f1f3f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#11794b;font-weight:600}.warn{color:#b26a00;font-weight:600}.bad{color:#b3261e;font-weight:600}
img{max-width:100%;background:#fff;border:1px solid #e3e6ea;border-radius:4px}
.muted{color:#667}
"""


def figure_to_img(fig: Any, alt: str) -> str:
    """A matplotlib figure as an inline <img> (PNG, base64)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            css = ' class="num"' if index in numeric else ""
            text = (
                value
                if isinstance(value, Markup)
                else html.escape("" if value is None else str(value))
            )
            cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Markup(str):
    """Trusted HTML that `html_table` must not escape."""


def page(title: str, sections: Sequence[str], banner: str | None = None) -> str:
    banner_html = f'<div class="banner">{banner}</div>' if banner else ""
    generated = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<div class='muted'>generated {generated}</div>{banner_html}{''.join(sections)}"
        "</body></html>"
    )


def candle_frame(engine: Engine, exchange: str, symbol: str, timeframe: str) -> pd.DataFrame:
    table = Candle.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.ts, table.c.close, table.c.volume)
            .where(
                table.c.exchange == exchange,
                table.c.symbol == symbol,
                table.c.timeframe == timeframe,
            )
            .order_by(table.c.ts)
        ).all()
    frame = pd.DataFrame(rows, columns=["ts", "close", "volume"])
    frame["close"] = frame["close"].astype(float)
    frame["volume"] = pd.to_numeric(frame["volume"], errors="coerce").astype(float)
    return frame


def series_chart(engine: Engine, series: Sequence[tuple[str, str, str]]) -> str:
    """Close prices of each series (indexed to 100 at its start) and volumes."""
    frames = {f"{s} {t} ({e})": candle_frame(engine, e, s, t) for e, s, t in series}
    frames = {name: frame for name, frame in frames.items() if not frame.empty}
    if not frames:
        return "<p class='muted'>No candles stored yet.</p>"
    out = []
    groups: dict[int, dict[str, pd.DataFrame]] = {}
    for name, frame in frames.items():
        groups.setdefault(frame["ts"].iloc[0].year, {})[name] = frame
    for year, group in sorted(groups.items()):
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(11, 5.5), sharex=True, height_ratios=[3, 1]
        )
        for name, frame in group.items():
            top.plot(frame["ts"], frame["close"] / frame["close"].iloc[0] * 100, lw=0.9, label=name)
            bottom.plot(frame["ts"], frame["volume"] / frame["volume"].max(), lw=0.6)
        top.set_ylabel("close, indexed to 100")
        top.legend(fontsize=7, ncol=2)
        top.grid(alpha=0.3)
        bottom.set_ylabel("volume (scaled)")
        bottom.grid(alpha=0.3)
        top.set_title(f"Stored candles, {year}")
        out.append(figure_to_img(fig, f"candles {year}"))
    return "".join(out)


def _state_class(state: str) -> str:
    return {"fresh": "ok", "stale": "warn", "degraded": "warn", "never": "muted"}.get(state, "bad")


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def ledger_sections(
    engine: Engine, status: dict[str, Any], import_rows: Sequence[Sequence[Any]] = ()
) -> list[str]:
    """HTML sections: loaded data (chart + tables), collector health, ledger tables, gaps."""
    sections = []
    table = Candle.__table__
    with engine.connect() as conn:
        series = [
            (row.exchange, row.symbol, row.timeframe)
            for row in conn.execute(
                select(table.c.exchange, table.c.symbol, table.c.timeframe).distinct()
            )
        ]
    if import_rows:
        sections.append(
            "<h2>What was loaded</h2>"
            + html_table(
                [
                    "file",
                    "series",
                    "rows read",
                    "inserted",
                    "duplicates",
                    "bad rows",
                    "gaps",
                    "first",
                    "last",
                ],
                import_rows,
                numeric=(2, 3, 4, 5, 6),
            )
        )
    sections.append("<h2>Prices</h2>" + series_chart(engine, series))
    sections.append(
        "<h2>Collector health</h2>"
        + html_table(
            [
                "collector",
                "state",
                "last success",
                "runs (24 h)",
                "error rate",
                "quarantined",
                "last error",
            ],
            [
                (
                    row["collector"],
                    Markup(
                        f"<span class='{_state_class(row['state'])}'>"
                        f"{html.escape(row['state'])}</span>"
                    ),
                    _fmt_time(row["last_success"]),
                    row["runs_24h"],
                    f"{row['error_rate_24h']:.0%}",
                    row["quarantined"],
                    row["last_error"] or "",
                )
                for row in status["collectors"]
            ],
            numeric=(3, 4, 5),
        )
    )
    sections.append(
        "<h2>Ledger tables</h2>"
        + html_table(
            ["ledger", "table", "rows", "first", "last"],
            [
                (
                    row["ledger"],
                    row["table"],
                    f"{row['rows']:,}",
                    _fmt_time(row["first"]),
                    _fmt_time(row["last"]),
                )
                for row in status["tables"]
            ],
            numeric=(2,),
        )
    )
    quality = status.get("quality") or {}
    nulls = [r for r in quality.get("null_rates", []) if r["null_rate"] > 0]
    found = quality.get("anomalies", [])
    sections.append(
        "<h2>Data quality</h2>"
        + html_table(
            ["collector", "runs (24 h)", "expected", "items fetched", "written", "duplicates"],
            [
                (
                    r["collector"],
                    r["runs_24h"],
                    "" if r["expected_runs_24h"] is None else r["expected_runs_24h"],
                    f"{r['fetched_24h']:,}",
                    f"{r['written_24h']:,}",
                    f"{r['duplicate_rate_24h']:.0%}",
                )
                for r in quality.get("volume", [])
            ],
            numeric=(1, 2, 3, 4, 5),
        )
        + (
            html_table(
                ["table", "field", "rows", "null rate"],
                [
                    (r["table"], r["field"], f"{r['rows']:,}", f"{r['null_rate']:.1%}")
                    for r in nulls
                ],
                numeric=(2, 3),
            )
            if nulls
            else "<p>Null key fields: none.</p>"
        )
        + (
            html_table(
                ["series", "measure", "z-score", "at"],
                [(a["series"], a["measure"], f"{a['z']:+.1f}", _fmt_time(a["at"])) for a in found],
                numeric=(2,),
            )
            if found
            else "<p>Anomalies (|z| &gt; 4 against the trailing window): none.</p>"
        )
    )
    gaps = status.get("gaps") or []
    sections.append(
        "<h2>Gaps</h2>"
        + (
            html_table(
                ["series", "missing bars", "largest gap", "starting after"],
                [(g["series"], g["missing"], g["largest"], _fmt_time(g["at"])) for g in gaps],
                numeric=(1,),
            )
            if gaps
            else "<p>No gaps.</p>"
        )
    )
    return sections


def write_report(
    path: Path, title: str, sections: Sequence[str], banner: str | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(title, sections, banner), encoding="utf-8")
    return path
