"""`omc demo`: the main job on embedded defaults (SQLite, bundled data, no network, no keys);
`--serve` then shows it in the web dashboard (`omc.cli.demo_serve`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omc.cli.context import console, engine, settings


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path | None = typer.Option(
            None, help="Directory for the report (default: <data_dir>/demo)."
        ),
        serve: bool = typer.Option(
            False,
            "--serve",
            help="Then serve the dashboard on 127.0.0.1 with the demo in it, for a local "
            "user `demo` (its password printed once).",
        ),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="With --serve."),
    ) -> None:
        """Load the bundled real candles (demo data), backtest a strategy, run a Lab study,
        write a report; with --serve, show it all in the web dashboard."""
        from omc.demo.job import bundled_files, run_demo

        config = settings()
        out_dir = out or (config.data_dir / "demo")
        db = engine()
        console.print(f"database: [bold]{db.url.render_as_string(hide_password=True)}[/]")
        files = bundled_files()
        with Progress(
            TextColumn("[bold]loading demo data[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("", total=len(files) + 3)

            def step(label: str) -> None:
                progress.update(task, description=label)
                progress.advance(task)

            result = run_demo(db, config, out_dir, progress=step)
        table = Table(title="demo data loaded (real historical candles, exchange 'demo')")
        for column in ("series", "rows", "inserted", "already stored", "bad rows", "gaps"):
            table.add_column(column, justify="right" if column != "series" else "left")
        for r in result.imports:
            table.add_row(
                f"{r.symbol} {r.timeframe}",
                f"{r.rows_read:,}",
                f"{r.inserted:,}",
                f"{r.duplicates:,}",
                str(len(r.bad_rows)),
                f"{len(r.gaps)} ({r.missing} bars)",
            )
        console.print(table)
        for line in result.extra.get("summary", []):
            console.print(line)
        console.print(f"\nreport: [bold]{result.report_path.resolve().as_uri()}[/]")
        if serve:
            from omc.cli.demo_serve import serve as serve_demo

            serve_demo(port)
