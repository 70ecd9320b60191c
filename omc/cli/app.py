"""The `omc` command: one Typer app; each command group registers itself from its module."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from omc.cli import alerts, backtest, collect, data, db, demo, floor, lab, trade
from omc.cli.context import err_console, setup_logging
from omc.floor.strategy import LookAheadError

app = typer.Typer(
    name="omc",
    help="Oh My Coins: collect market data, research, backtest and trade crypto strategies.",
    no_args_is_help=True,
    add_completion=False,
)

for module in (db, collect, data, alerts, backtest, trade, floor, lab, demo):
    module.register(app)


@app.callback()
def _root() -> None:
    setup_logging()


def main() -> None:
    try:
        app()
    except ValidationError as exc:  # a bad OMC_* setting: say which and why, no traceback
        err_console.print(f"[red]configuration error[/]: {exc}")
        raise SystemExit(2) from None
    except LookAheadError as exc:  # a strategy read later bars (backtest, paper, live)
        err_console.print(f"[red]error:[/] look-ahead: {exc}", soft_wrap=True, highlight=False)
        raise SystemExit(1) from None
