"""`omc floor …`: Floor reports over trading accounts — `omc floor divergence` compares an
account's fills with its backtest on the same period (and with another account)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from omc.cli.context import console, engine, fail, not_negative, settings
from omc.cli.trade import _jsonable
from omc.core.csv_cells import safe_dict

STAT_ROWS = (
    ("reference_trades", "trades (reference)"),
    ("actual_trades", "trades (actual)"),
    ("matched", "matched"),
    ("missed", "missed (reference traded, actual did not)"),
    ("extra", "extra (actual traded, reference did not)"),
    ("mean_abs_dt_s", "mean |time difference| (s)"),
    ("assumed_slippage_bps", "assumed slippage (bps)"),
    ("mean_slippage_bps", "mean slippage (bps, + = worse)"),
    ("p95_abs_slippage_bps", "p95 |slippage| (bps)"),
    ("mean_abs_quantity_diff_pct", "mean |size difference| (%)"),
    ("reference_fees", "fees (reference)"),
    ("actual_fees", "fees (actual)"),
    ("mean_fee_bps_diff", "fee difference (bps of notional)"),
    ("reference_pnl", "P&L (reference)"),
    ("actual_pnl", "P&L (actual)"),
    ("pnl_gap", "P&L gap"),
    ("pnl_gap_pct", "P&L gap (% of equity)"),
)


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _write(report: Any, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    data = report.as_dict()
    path = out / "divergence.json"
    path.write_text(json.dumps(_jsonable(data), indent=2))
    rows = out / "divergence_trades.csv"
    columns = ["comparison", "kind", "symbol", "side", "reference_time", "actual_time",
               "dt_s", "reference_price", "actual_price", "price_bps", "slippage_bps",
               "reference_quantity", "actual_quantity", "reference_fee", "actual_fee"]  # fmt: skip
    with rows.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()

        def put(row: dict[str, Any]) -> None:
            writer.writerow(safe_dict(row))

        for c in data["comparisons"]:
            name = f"{c['reference']} -> {c['actual']}"
            for p in c["pairs"]:
                put({"comparison": name, "kind": "matched", **_jsonable(p)})
            for kind, side in (("missed", "reference"), ("extra", "actual")):
                for e in c[kind]:
                    e = _jsonable(e)
                    put(
                        {
                            "comparison": name,
                            "kind": kind,
                            "symbol": e["symbol"],
                            "side": e["side"],
                            f"{side}_time": e["time"],
                            f"{side}_price": e["price"],
                            f"{side}_quantity": e["quantity"],
                            f"{side}_fee": e["fee"],
                        }
                    )
    return [path, rows]


def _print(report: Any) -> None:
    params = ", ".join(f"{k}={v}" for k, v in sorted(report.params.items()))
    console.print(
        f"[bold]{report.account}[/] ({report.venue}): {report.strategy}({params}) on "
        f"{', '.join(report.symbols)}, {report.start:%Y-%m-%d %H:%M} .. "
        f"{report.end:%Y-%m-%d %H:%M} UTC, {report.bar_seconds:g} s bars"
    )
    for c in report.comparisons:
        table = Table(title=f"{c.reference.label} → {c.actual.label}")
        table.add_column("")
        table.add_column("value", justify="right")
        for key, label in STAT_ROWS:
            table.add_row(label, _cell(c.stats[key]))
        console.print(table)
        if c.actual.denials:
            console.print(
                "denials: " + ", ".join(f"{code}: {n}" for code, n in c.actual.denials.items())
            )
        for kind, items in (("missed", c.missed), ("extra", c.extra)):
            for e in items[:5]:
                console.print(
                    f"  {kind}: {e.time:%Y-%m-%d %H:%M} {e.side} {e.quantity} {e.symbol} "
                    f"@ {e.price:,.6g}"
                )
            if len(items) > 5:
                console.print(f"  … {len(items) - 5} more {kind}")
        if c.reasons:
            console.print("verdict: [red]outside[/] — " + "; ".join(c.reasons), soft_wrap=True)
        else:
            console.print("verdict: [green]within[/] what the reference promised")
    colour = "green" if report.verdict == "within" else "red"
    console.print(f"[bold]overall verdict: [{colour}]{report.verdict}[/][/]")


def register(app: typer.Typer) -> None:
    floor_app = typer.Typer(help="Floor reports over trading accounts.", no_args_is_help=True)
    app.add_typer(floor_app, name="floor")

    @floor_app.command("divergence")
    def divergence(
        account: str = typer.Option(..., "--account", help="The account (journal) to judge."),
        data: list[Path] = typer.Option(
            [], "--data", help="Candle CSV of the period (per symbol); default: the ledger."
        ),
        against: str | None = typer.Option(
            None, "--against", help="Another account to compare (e.g. the paper twin)."
        ),
        timeframe: str | None = typer.Option(
            None, "--timeframe", help="Ledger candle timeframe (default: the journaled bars')."
        ),
        exchange: str | None = typer.Option(None, "--exchange", help="Ledger exchange."),
        fee_bps: float | None = typer.Option(
            None, "--fee-bps", help="Backtest fee (bps); default the configured fees."
        ),
        slippage_bps: float = typer.Option(
            0.0, "--slippage-bps", help="Slippage the backtest assumes (bps)."
        ),
        tolerance_bars: float = typer.Option(
            2.0, "--tolerance-bars", help="Pair trades at most this many bars apart."
        ),
        max_slippage_bps: float = typer.Option(
            10.0, "--max-slippage-bps", help="Within: mean slippage ≤ assumed + this."
        ),
        max_fee_excess_bps: float = typer.Option(
            2.0, "--max-fee-excess-bps", help="Within: fees ≤ the backtest's + this (bps)."
        ),
        max_unmatched_pct: float = typer.Option(
            10.0, "--max-unmatched-pct", help="Within: missed + extra ≤ this % of trades."
        ),
        max_pnl_gap_pct: float = typer.Option(
            1.0, "--max-pnl-gap-pct", help="Within: |P&L gap| ≤ this % of equity."
        ),
        max_size_diff_pct: float = typer.Option(
            10.0, "--max-size-diff-pct", help="Within: mean |size difference| ≤ this %."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        out: Path | None = typer.Option(
            None, "--out", help="Write divergence.json and divergence_trades.csv here."
        ),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when the verdict is outside."),
    ) -> None:
        """Compare an account's fills with its backtest on the same period: times, prices
        (slippage vs the backtest's assumption), fees, missed/extra trades, denials; verdict."""
        from omc.floor.data import load_csv
        from omc.floor.divergence import Thresholds, divergence_report
        from omc.floor.fills import FeeModel, SlippageModel

        def dec(value: float) -> Decimal:
            return Decimal(str(value))

        not_negative(fee_bps, "--fee-bps")
        not_negative(slippage_bps, "--slippage-bps")
        bars = None
        if data:
            try:
                loaded = [load_csv(p) for p in data]
            except (OSError, ValueError, KeyError) as exc:
                fail(f"--data: {exc}")
            bars = {b.symbol: b for b in loaded}
        fees = FeeModel.flat(dec(fee_bps)) if fee_bps is not None else None
        thresholds = Thresholds(
            tolerance_bars=tolerance_bars,
            max_slippage_bps=dec(max_slippage_bps),
            max_fee_excess_bps=dec(max_fee_excess_bps),
            max_unmatched_pct=dec(max_unmatched_pct),
            max_pnl_gap_pct=dec(max_pnl_gap_pct),
            max_size_diff_pct=dec(max_size_diff_pct),
        )
        try:
            report = divergence_report(
                engine(),
                account,
                bars=bars,
                against=against,
                timeframe=timeframe,
                exchange=exchange,
                fees=fees or FeeModel.from_settings(settings()),
                slippage=SlippageModel(dec(slippage_bps)),
                thresholds=thresholds,
            )
        except (LookupError, ValueError) as exc:
            fail(str(exc).strip("'\""))
        written = _write(report, out) if out is not None else []
        if as_json:
            console.print_json(json.dumps(_jsonable(report.as_dict())))
        else:
            _print(report)
            for path in written:
                console.print(f"wrote {path}")
        if strict and report.verdict != "within":
            raise typer.Exit(1)
