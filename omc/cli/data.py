"""`omc data …` (import, export, candles from ticks) and `omc backfill`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Import, export and derive ledger data.", no_args_is_help=True)
    app.add_typer(data_app, name="data")
