"""Self-contained HTML pages: the one set of helpers every OMC report uses (ledger, backtest,
Lab) — the page shell and style, tables, and matplotlib figures embedded as base64 PNG data
URIs, so a report opens offline and fetches nothing."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from omc.core.time import utcnow

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


def fmt(value: Any, pattern: str) -> str:
    """`value` formatted with `pattern` ("{:.2%}"); "–" for None, str() when it won't format."""
    if value is None:
        return "–"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def png_data_uri(fig: Any, dpi: int = 110) -> str:
    """A matplotlib figure as a `data:image/png;base64,...` URI (the figure is closed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def figure_to_img(fig: Any, alt: str, dpi: int = 110) -> str:
    """A matplotlib figure as an inline <img> (PNG, base64)."""
    return f'<img alt="{html.escape(alt)}" src="{png_data_uri(fig, dpi)}">'


class Markup(str):
    """Trusted HTML that `html_table` must not escape."""


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


def page(title: str, sections: Sequence[str], banner: str | None = None) -> str:
    banner_html = f'<div class="banner">{banner}</div>' if banner else ""
    generated = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<div class='muted'>generated {generated}</div>{banner_html}{''.join(sections)}"
        "</body></html>"
    )
