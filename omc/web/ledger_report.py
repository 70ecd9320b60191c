"""The ledger report: one self-contained HTML page (charts embedded, no network) showing what
the ledgers hold and how the collectors are doing."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from sqlalchemy import Engine, select

from omc.core.htmlpage import Markup, figure_to_img, html_table, page
from omc.ledgers.models import Candle


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
