"""The `omc` command: one Typer app; each command group registers itself from its module.

A user's mistake that escapes a command is printed as one line by `omc.cli.errors.explain`
(no traceback unless `--debug`)."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from omc.cli import (
    alerts,
    backtest,
    collect,
    data,
    db,
    demo,
    floor,
    lab,
    lab_wiring,
    ops,
    serve,
    strategies,
    trade,
    users,
)
from omc.cli import context as ctx
from omc.cli.errors import explain

app = typer.Typer(
    name="omc",
    help="Oh My Coins: collect market data, research, backtest and trade crypto strategies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback must never print a secret
)

for module in (
    db,
    collect,
    data,
    alerts,
    backtest,
    trade,
    floor,
    strategies,
    lab,
    demo,
    users,
    serve,
    ops,
):
    module.register(app)
lab_wiring.register()  # strategy names model:<ID> (approved Lab models), resolved lazily


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an error (and log at DEBUG)."
    ),
) -> None:
    ctx.DEBUG = debug
    ctx.setup_logging("DEBUG" if debug else None)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        app(args=None if argv is None else list(argv), prog_name="omc")
    except Exception as exc:
        found = None if ctx.DEBUG else explain(exc)
        if found is None:
            raise
        message, code = found
        ctx.print_error(message)
        raise SystemExit(code) from None
