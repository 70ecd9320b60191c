"""The `omc` command: one Typer app; each command group registers itself from its module."""

from __future__ import annotations

import typer

from omc.cli import collect, data, db, demo
from omc.cli.context import setup_logging

app = typer.Typer(
    name="omc",
    help="Oh My Coins: collect market data, research, backtest and trade crypto strategies.",
    no_args_is_help=True,
    add_completion=False,
)

for module in (db, collect, data, demo):
    module.register(app)


@app.callback()
def _root() -> None:
    setup_logging()


def main() -> None:
    app()
