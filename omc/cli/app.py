"""The `omc` command: one Typer app; each command group registers itself from its module.

A user's mistake that escapes a command is printed as one line by `omc.cli.errors.explain`
(no traceback unless `--debug`). The root group does it (`OneLineErrors.invoke`), so every way
of running the app — `omc`, `main()`, a test's CliRunner — gets the same line and exit code,
and commands need no handlers of their own for what `explain` knows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from omc.cli import (
    alerts,
    backtest,
    collect,
    data,
    db,
    demo,
    floor,
    init,
    lab,
    lab_wiring,
    ops,
    serve,
    strategies,
    trade,
    users,
    worker,
)
from omc.cli import context as ctx
from omc.cli.errors import explain


class OneLineErrors(TyperGroup):
    """The root command group: an exception `explain` knows becomes one line and its exit code."""

    def invoke(self, ctx_: Any) -> Any:  # typer vendors click: its Context type is private
        try:
            return super().invoke(ctx_)
        except Exception as exc:
            found = None if ctx.DEBUG else explain(exc)
            if found is None:
                raise
            message, code = found
            ctx.print_error(message)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=OneLineErrors,
    name="omc",
    help="Oh My Coins: collect market data, research, backtest and trade crypto strategies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback must never print a secret
)

for module in (
    init,
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
    worker,
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
    app(args=None if argv is None else list(argv), prog_name="omc")
