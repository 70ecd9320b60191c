"""`omc backtest`: one backtest (files + HTML report), a parameter sweep (`--grid`), or a
walk-forward analysis (`--walk-forward`), on a CSV file or candles from the database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from omc.cli.context import (
    STRATEGY_HELP,
    console,
    fail,
    guard_lines,
    not_negative,
    parse_params,
    positive_cash,
    settings,
)

if TYPE_CHECKING:  # numpy, pandas and matplotlib load only when a backtest runs
    from omc.floor.data import Bars


def _load(data: Path | None, symbol: str | None, timeframe: str, exchange: str | None) -> Bars:
    from omc.floor.data import load_csv, load_db

    if data is not None:
        return load_csv(data, symbol)
    if symbol is None:
        raise typer.BadParameter("give --data FILE or --symbol S (with --timeframe)")
    from omc.cli.context import engine

    return load_db(engine(), symbol, timeframe, exchange)


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(
        data: Path | None = typer.Option(None, "--data", help="CSV: timestamp,o,h,l,c,volume."),
        symbol: str | None = typer.Option(None, "--symbol", help="Symbol in the Candle table."),
        timeframe: str = typer.Option("5m", "--timeframe", help="Candle timeframe (DB)."),
        exchange: str | None = typer.Option(None, "--exchange", help="Exchange (DB)."),
        strategy: str = typer.Option("sma_cross", "--strategy", help=STRATEGY_HELP),
        param: list[str] = typer.Option([], "--param", help="Strategy parameter k=v."),
        fee_bps: float | None = typer.Option(
            None, "--fee-bps", help="Fee (bps) for maker and taker; default CoinSpot's."
        ),
        slippage_bps: float = typer.Option(0.0, "--slippage-bps", help="Slippage (bps)."),
        volume_share: float | None = typer.Option(
            None, "--volume-share", help="Max share of a bar's volume per fill (partial fills)."
        ),
        cash: str = typer.Option("10000", "--cash", help="Starting cash (quote currency)."),
        guard: bool = typer.Option(
            False,
            "--guard",
            help="Run the orders through the paper/live Guard limits (OMC_GUARD_*), sized as "
            "in paper trading: the fills of `omc trade paper --replay` on the same candles.",
        ),
        out: Path = typer.Option(Path("backtest"), "--out", help="Output directory."),
        grid: list[str] = typer.Option(
            [], "--grid", help="Sweep a parameter: name=start:stop:step or name=a,b,c."
        ),
        walk_forward: bool = typer.Option(
            False, "--walk-forward", help="Optimise on rolling windows; report out-of-sample."
        ),
        folds: int = typer.Option(4, "--folds", help="Walk-forward test windows."),
        purge: int = typer.Option(
            0,
            "--purge",
            min=0,
            help="Walk-forward: bars left out between each training window and its test window.",
        ),
        workers: int | None = typer.Option(None, "--workers", help="Sweep processes."),
        on_workers: bool = typer.Option(
            False,
            "--on-workers",
            help="--grid with --symbol: split the sweep over the queue's workers "
            "(OMC_BROKER_URL); the same rows as on this machine.",
        ),
        rank_by: str = typer.Option("sharpe", "--rank-by", help="Sweep ranking metric."),
        top: int = typer.Option(20, "--top", help="Rows of the sweep table to print."),
        book: Path | None = typer.Option(
            None,
            "--book",
            help="A book file (TOML): its strategies together, through the portfolio Guard "
            "and their allocations.",
        ),
        as_json: bool = typer.Option(False, "--json", help="--book: print the report as JSON."),
    ) -> None:
        """Backtest a strategy; sweep its parameters; walk it forward; or run a book."""
        if book is not None:
            _run_book(book, as_json)
            return
        from omc.floor.backtest.sweep import check_rank_by, parse_grid
        from omc.floor.strategies import strategy_class
        from omc.web.backtest_report import ROWS, fmt

        starting = positive_cash(cash)
        not_negative(fee_bps, "--fee-bps")
        not_negative(slippage_bps, "--slippage-bps")
        if volume_share is not None and not 0 < volume_share <= 1:
            fail(f"--volume-share must be above 0 and at most 1, got {volume_share}")
        if folds < 1:
            fail(f"--folds must be at least 1, got {folds}")
        try:
            check_rank_by(rank_by)
        except ValueError as exc:
            fail(f"--rank-by: {exc}")
        params = parse_params(param)
        try:
            defaults = strategy_class(strategy).defaults
        except ValueError as exc:
            fail(str(exc))
        try:
            grids = dict(
                parse_grid(g, defaults.get(g.partition("=")[0].strip(), 0.0)) for g in grid
            )
        except ValueError as exc:
            fail(f"--grid: {exc}")
        try:
            bars = _load(data, symbol, timeframe, exchange)
        except (LookupError, ValueError, OSError) as exc:
            fail(str(exc))
        from omc.floor.backtest import single

        spec = single.BacktestSpec(
            strategy,
            params,
            cash=starting,
            fee_bps=None if fee_bps is None else Decimal(str(fee_bps)),
            slippage_bps=Decimal(str(slippage_bps)),
            volume_share=None if volume_share is None else Decimal(str(volume_share)),
            guard=guard,
        )
        out.mkdir(parents=True, exist_ok=True)
        common: dict[str, Any] = {
            "base_params": params,
            "cash": float(starting),
            "fee_bps": float(spec.fees(settings()).taker_bps),
            "slippage_bps": slippage_bps,
            "volume_share": volume_share,
            "workers": workers,
            "rank_by": rank_by,
        }
        if guard and (walk_forward or grids):
            raise typer.BadParameter("--guard applies to a single backtest, not --grid sweeps")
        if walk_forward:
            if not grids:
                raise typer.BadParameter("--walk-forward needs at least one --grid")
            try:
                _walk_forward(strategy, bars, grids, folds, out, common, purge)
            except ValueError as exc:  # e.g. too few bars for the folds
                fail(f"--walk-forward: {exc}")
            return
        if on_workers and (not grids or symbol is None or walk_forward):
            fail("--on-workers splits a --grid sweep of --symbol candles (from the database)")
        if grids:
            source = (symbol, timeframe, exchange) if on_workers and symbol else None
            _sweep(strategy, bars, grids, out, top, common, source)
            return
        from omc.floor.backtest.export import write_all
        from omc.web.backtest_report import write_report

        try:
            strat = single.check(spec)
        except ValueError as exc:
            fail(str(exc))
        try:
            result = single.run(spec, bars, settings(), strategy=strat)
        except ValueError as exc:  # e.g. a strategy placing stop orders
            raise typer.BadParameter(str(exc)) from exc
        write_all(result, out)
        write_report(result, out / "report.html")
        table = Table(title=f"{strat!r} on {bars.symbol} ({len(bars):,} bars)")
        table.add_column("Metric")
        table.add_column("Strategy", justify="right")
        table.add_column("Buy & hold", justify="right")
        for key, label, pattern in ROWS:
            table.add_row(
                label,
                fmt(result.metrics.get(key), pattern),
                fmt(result.benchmark.get(key), pattern),
            )
        console.print(table)
        if result.guard is not None:
            for line in guard_lines(result.guard):
                console.print(line)
        console.print(f"Wrote trades.csv, equity.csv, metrics.json, report.html to {out}")


def _sweep(
    strategy: str,
    bars: Bars,
    grids: dict[str, list[Any]],
    out: Path,
    top: int,
    common: dict[str, Any],
    on_workers: tuple[str, str, str | None] | None = None,
) -> None:
    from omc.floor.backtest.sweep import combinations, run_sweep
    from omc.web.backtest_report import ROWS, fmt

    total = len(combinations(grids))
    if on_workers is not None:  # (symbol, timeframe, exchange) read by every worker
        from omc.ops.queue.app import configure
        from omc.ops.queue.sweep import sweep_on_workers

        try:
            configure()
        except ValueError as exc:
            fail(str(exc))
        symbol, timeframe, exchange = on_workers
        chunks = max(8, total // 4)
        rest = {k: v for k, v in common.items() if k != "workers"}
        with console.status(f"sweep {strategy}: {total} combinations on the workers"):
            rows = sweep_on_workers(
                strategy, symbol, timeframe, grids, exchange=exchange, chunks=chunks, **rest
            )
    else:
        with _progress() as progress:
            task = progress.add_task(f"sweep {strategy}", total=total)
            rows = run_sweep(
                strategy, bars, grids, progress=lambda k: progress.advance(task, k), **common
            )
    keys = list(grids)
    cols = ["total_return", "sharpe", "max_drawdown", "trades", "win_rate", "final_equity"]
    table = Table(
        title=f"{strategy}: {len(rows)} valid of {total} combinations, "
        f"ranked by {common['rank_by']}"
    )
    table.add_column("#", justify="right")
    for k in keys + cols:
        table.add_column(k, justify="right")
    pats = dict((k, p) for k, _, p in ROWS)
    for rank, row in enumerate(rows[:top], 1):
        table.add_row(
            str(rank),
            *[str(row[k]) for k in keys],
            *[fmt(row.get(c), pats.get(c, "{}")) for c in cols],
        )
    console.print(table)
    import csv

    from omc.core.csv_cells import safe_dict

    with (out / "sweep.csv").open("w", newline="") as fh:
        fields = keys + [k for k in (rows[0] if rows else {}) if k not in keys]
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(safe_dict(row) for row in rows)
    console.print(f"Wrote {out / 'sweep.csv'}")


def _walk_forward(
    strategy: str,
    bars: Bars,
    grids: dict[str, list[Any]],
    folds: int,
    out: Path,
    common: dict[str, Any],
    purge: int = 0,
) -> None:
    from omc.floor.backtest.sweep import combinations
    from omc.floor.backtest.walkforward import walk_forward
    from omc.web.backtest_report import ROWS, fmt

    total = len(combinations(grids)) * folds
    with _progress() as progress:
        task = progress.add_task(f"walk-forward {strategy}", total=total)
        res = walk_forward(
            strategy,
            bars,
            grids,
            folds=folds,
            purge=purge,
            progress=lambda k: progress.advance(task, k),
            **common,
        )
    table = Table(title=f"{strategy} walk-forward: out-of-sample results only")
    for c in ("fold", "test from", "test to", "params", "test return", "test sharpe", "trades"):
        table.add_column(c, justify="right")
    for k, f in enumerate(res.folds, 1):
        t0, t1 = bars.time(f.test[0]), bars.time(f.test[1] - 1)
        table.add_row(
            str(k),
            f"{t0:%Y-%m-%d %H:%M}",
            f"{t1:%Y-%m-%d %H:%M}",
            ", ".join(f"{a}={b}" for a, b in f.params.items()),
            fmt(f.test_metrics.get("total_return"), "{:.2%}"),
            fmt(f.test_metrics.get("sharpe"), "{:.2f}"),
            str(f.test_metrics.get("trades")),
        )
    console.print(table)
    summary = Table(title="Out-of-sample, chained")
    summary.add_column("Metric")
    summary.add_column("Value", justify="right")
    for key, label, pattern in ROWS:
        if key in res.metrics:
            summary.add_row(label, fmt(res.metrics[key], pattern))
    console.print(summary)
    doc = {
        "out_of_sample": res.metrics,
        "purge_bars": purge,
        "folds": [
            {
                "train_window": [
                    bars.time(f.train[0]).isoformat(),
                    bars.time(f.train[1] - 1).isoformat(),
                ],
                "test_window": [
                    bars.time(f.test[0]).isoformat(),
                    bars.time(f.test[1] - 1).isoformat(),
                ],
                "params": f.params,
                "train_" + common["rank_by"]: f.train_metric,
                "test_metrics": f.test_metrics,
            }
            for f in res.folds
        ],
    }
    (out / "walk_forward.json").write_text(json.dumps(doc, indent=2, default=str))
    console.print(f"Wrote {out / 'walk_forward.json'}")


def _run_book(path: Path, as_json: bool) -> None:
    """`omc backtest --book FILE` (`omc.floor.book.backtest`), in a scratch database."""
    import tempfile

    from omc.core.db import make_engine
    from omc.floor.book.backtest import BookFileError, load_book, run_book
    from omc.floor.trading.guard import GuardSettings
    from omc.migrations import upgrade

    try:
        spec = load_book(path)
    except (BookFileError, OSError) as exc:
        fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="omc-book-") as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'book.db'}")
        upgrade(db)
        try:
            report = run_book(db, spec, settings=settings(), limits=GuardSettings().limits())
        finally:
            db.dispose()
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(title=f"Book {path.name} ({report['allocation']} allocation)")
    cols = ("strategy", "symbol", "capital", "final equity", "contribution", "trades", "denials")
    for col in cols:
        table.add_column(col, justify="left" if col in ("strategy", "symbol") else "right")
    for p in report["strategies"]:
        denied = ", ".join(f"{k} {v}" for k, v in p["denials"].items()) or "–"
        table.add_row(
            p["strategy"], p["symbol"], f"{p['capital']:,.2f}", f"{p['final_equity']:,.2f}",
            f"{p['contribution']:+,.2f}", str(p["trades"]), denied,
        )  # fmt: skip
    console.print(table)
    console.print(
        f"book: {report['capital']:,.2f} → {report['final_equity']:,.2f} "
        f"({float(report['total_return']):+.2%}), max drawdown {float(report['max_drawdown']):.2%}"
    )
