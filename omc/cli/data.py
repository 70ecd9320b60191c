"""`omc data …` (import, export, candles from ticks) and `omc backfill`.

The commands only parse options, call the ledger modules and print with Rich; bad input
(unknown exchange/symbol/timeframe/kind/format, unreadable file, bad date) exits with code 2
and a one-line message, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from omc.cli.context import console, engine, err_console, fail, settings
from omc.core.time import iso_utc, parse_utc, timeframe_seconds


def _parse_time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_utc(text)
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO-8601 date or datetime (e.g. 2024-01-01)")


def _check_timeframe(timeframe: str) -> None:
    try:
        timeframe_seconds(timeframe)
    except ValueError as exc:
        fail(str(exc))


def _when(value: datetime | None) -> str:
    return iso_utc(value) if value else "-"


def print_import_report(report: Any, limit: int = 20) -> None:
    """Print an `ImportReport` (summary, bad rows, gaps) with Rich."""
    summary = Table(title=f"import {report.path}", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    for name, value in (
        ("market", f"{report.exchange} {report.symbol} {report.timeframe} ({report.format})"),
        ("rows read", report.rows_read),
        ("inserted", report.inserted),
        ("already stored", report.duplicates),
        ("repeated in file", report.repeated),
        ("bad rows", len(report.bad_rows)),
        ("gaps", f"{len(report.gaps)} ({report.missing} missing candles)"),
        ("first", _when(report.first)),
        ("last", _when(report.last)),
    ):
        summary.add_row(name, str(value))
    console.print(summary)
    if report.bad_rows:
        bad = Table(title="bad rows (not stored, quarantined)")
        for column in ("line", "reason", "row"):
            bad.add_column(column)
        for row in report.bad_rows[:limit]:
            bad.add_row(str(row.line), row.reason, row.raw[:80])
        console.print(bad)
        if len(report.bad_rows) > limit:
            console.print(f"… and {len(report.bad_rows) - limit} more bad rows")
    if report.gaps:
        gaps = Table(title="gaps")
        for column in ("after", "before", "missing"):
            gaps.add_column(column)
        for gap in report.gaps[:limit]:
            gaps.add_row(iso_utc(gap.after), iso_utc(gap.before), str(gap.missing))
        console.print(gaps)
        if len(report.gaps) > limit:
            console.print(f"… and {len(report.gaps) - limit} more gaps")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Import, export and derive ledger data.", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @app.command("backfill")
    def backfill_command(
        exchange: str = typer.Option(..., help="CCXT exchange id, e.g. binance."),
        symbol: str = typer.Option(..., help="Unified symbol, e.g. BTC/USDT."),
        timeframe: str = typer.Option("5m", help="Candle timeframe, e.g. 1m, 5m, 1h."),
        since: str = typer.Option(..., help="First candle (ISO-8601 UTC), e.g. 2024-01-01."),
        until: str | None = typer.Option(None, help="Stop before this time (default: now)."),
    ) -> None:
        """OHLCV history from a CCXT exchange: paginated, rate-limited, resumable."""
        from omc.ledgers.exchange.backfill import (
            BackfillError,
            BackfillInputError,
            backfill,
            make_exchange,
        )

        _check_timeframe(timeframe)
        start = _parse_time(since, "--since")
        assert start is not None
        end = _parse_time(until, "--until")
        try:
            ccxt_exchange = make_exchange(exchange, settings())
        except BackfillInputError as exc:
            fail(str(exc))
        db = engine()
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, transient=False) as bar:
            task = bar.add_task(f"{exchange} {symbol} {timeframe}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                report = backfill(
                    db,
                    exchange,
                    symbol,
                    timeframe,
                    start,
                    end,
                    settings=settings(),
                    exchange=ccxt_exchange,
                    progress=progress,
                )
            except BackfillInputError as exc:
                fail(str(exc))
            except BackfillError as exc:
                fail(str(exc), code=1)
        resumed = f", resumed at {iso_utc(report.resumed_from)}" if report.resumed_from else ""
        console.print(
            f"[green]backfill {report.exchange} {report.symbol} {report.timeframe}: "
            f"{report.status}[/] pages={report.pages} fetched={report.fetched} "
            f"inserted={report.inserted} duplicates={report.duplicates} "
            f"quarantined={report.quarantined} retries={report.retries}{resumed}\n"
            f"  stored {_when(report.first)} → {_when(report.last)}"
        )

    @data_app.command("import")
    def import_command(
        file: Path = typer.Argument(..., help="Candle file: .csv, .json, .feather or .parquet."),
        exchange: str = typer.Option(..., help="Exchange the candles come from."),
        symbol: str = typer.Option(..., help="Market as BASE/QUOTE, e.g. BTC/USDT."),
        timeframe: str = typer.Option(..., help="Candle timeframe, e.g. 5m."),
        fmt: str | None = typer.Option(
            None, "--format", help="csv, json, feather or parquet (default: from the suffix)."
        ),
    ) -> None:
        """Import candles from a file; bad rows are reported (with line numbers) and gaps listed."""
        from omc.ledgers.exchange.candle_files import CandleFileError, import_candles

        _check_timeframe(timeframe)
        try:
            report = import_candles(engine(), file, exchange, symbol, timeframe, fmt)
        except CandleFileError as exc:
            fail(str(exc))
        print_import_report(report)
        if report.bad_rows:  # the good rows are stored; the bad ones are not: say so, exit 1
            fail(
                f"{len(report.bad_rows)} bad row(s) in {file} were not imported (quarantined, "
                "listed above)",
                1,
            )

    @data_app.command("build-candles")
    def build_candles_command(
        timeframe: list[str] | None = typer.Option(
            None, "--timeframe", help="Timeframe to build (repeatable; default: settings)."
        ),
    ) -> None:
        """Build closed 1m/5m/1h candles from stored ticks (coins with no OHLCV source)."""
        from omc.ledgers.exchange.tick_candles import build_tick_candles

        timeframes = timeframe or settings().tick_candle_timeframes
        for tf in timeframes:
            _check_timeframe(tf)
        report = build_tick_candles(engine(), timeframes)
        details = " ".join(f"{tf}={n}" for tf, n in report.inserted.items())
        console.print(
            f"[green]candles from ticks:[/] {report.total} inserted ({details}) "
            f"from {report.series} series, {report.ticks_read} ticks read"
        )

    @data_app.command("export")
    def export_command(
        kind: str = typer.Argument(
            ...,
            help="What to export: ticks, candles, protocols, onchain, news, social, "
            "sentiment, events.",
        ),
        symbol: str | None = typer.Option(None, help="Only this symbol (BTC/USDT, or BTC)."),
        since: str | None = typer.Option(None, help="Only rows at or after this time."),
        fmt: str = typer.Option("csv", "--format", help="csv or json."),
        out: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
    ) -> None:
        """Write ledger rows as CSV or JSON (decimals as strings, ISO-8601 UTC timestamps)."""
        from omc.ledgers.export import EXPORTS, FORMATS, export, export_query

        if kind not in EXPORTS:
            fail(f"unknown kind {kind!r} (known: {', '.join(sorted(EXPORTS))})")
        if fmt not in FORMATS:
            fail(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        start = _parse_time(since, "--since")
        try:
            export_query(kind, symbol, start)
        except ValueError as exc:
            fail(str(exc))
        if out is None:
            try:
                count = export(engine(), kind, sys.stdout, fmt, symbol, start)
                sys.stdout.flush()
            except BrokenPipeError:  # e.g. `omc data export … | head`
                sys.stderr.close()
                raise typer.Exit(0) from None
        else:
            try:
                handle = out.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                fail(f"cannot write {out}: {exc.strerror}")
            with handle:
                count = export(engine(), kind, handle, fmt, symbol, start)
        err_console.print(f"exported {count} {kind} rows" + (f" to {out}" if out else ""))
