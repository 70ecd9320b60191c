"""What every CLI command shares: settings, the database (migrated on open), the console."""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:  # heavy imports happen in the commands that need them (fast `omc --help`)
    from sqlalchemy import Engine

    from omc.core.config import Settings

console = Console()
err_console = Console(stderr=True)
DEBUG = False  # `omc --debug`: tracebacks instead of one-line errors


def __getattr__(name: str) -> Any:
    """`context.get_settings` (tests clear its cache) without importing the settings early."""
    if name == "get_settings":
        from omc.core.config import get_settings

        return get_settings
    raise AttributeError(name)


def settings() -> Settings:
    from omc.core.config import get_settings

    return get_settings()


def setup_logging(level: str | None = None) -> None:
    level = level or settings().log_level.upper()
    handler: logging.Handler
    if settings().log_format == "json":  # OMC_LOG_FORMAT=json: one JSON object a line
        import sys

        from omc.core.jsonlog import JsonFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    for noisy in ("alembic", "matplotlib", "apscheduler.scheduler", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def print_error(message: str) -> None:
    """`error: message` as one red line on stderr (the message is printed as it is)."""
    from rich.markup import escape

    err_console.print(
        f"[red]error:[/] {escape(message)}", soft_wrap=True, emoji=False, highlight=False
    )


def fail(message: str, code: int = 2) -> NoReturn:
    """A user's mistake: one red line on stderr, exit `code`, no traceback."""
    print_error(message)
    raise typer.Exit(code)


def positive_cash(text: str, option: str = "--cash") -> Decimal:
    """A starting cash amount: a finite number above zero, else one line and exit 2."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except ArithmeticError:
        fail(f"{option} {text!r} is not a number")
    if not value.is_finite() or value <= 0:
        fail(f"{option} must be a positive amount, got {text}")
    return value


def not_negative(value: float | Decimal | None, option: str) -> None:
    """Fees, slippage, spreads: zero or more (a negative cost is nonsense), else exit 2."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        fail(f"{option} must be zero or more, got {value}")


STRATEGY_HELP = "A registered strategy (sma_cross, rsi_revert) or your own: path/to/file.py:Class."


def parse_params(items: list[str]) -> dict[str, str]:
    """`--param k=v` options as a dict (a malformed one is a clear usage error)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--param {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


@lru_cache(maxsize=1)
def engine() -> Engine:
    """The configured database, brought up to the latest schema."""
    from omc.core.db import make_engine
    from omc.migrations import upgrade

    url = settings().effective_database_url
    try:
        db = make_engine(url)
    except OSError as exc:  # SQLite: its directory cannot be created
        from omc.cli.errors import public_url

        fail(f"database {public_url(url)}: cannot create {exc.filename}: {exc.strerror}", 1)
    upgrade(db)
    return db


def guard_lines(report: dict[str, Any]) -> list[str]:
    """A Guard report (`omc.floor.trading.guard.guard_report`) as lines for people: every halt
    with its time and reason, then denials by reason code with their first and last time."""
    lines = []
    for h in report.get("halts", []):
        extra = f", drawdown {float(h['drawdown']):.2%}" if "drawdown" in h else ""
        lines.append(f"Guard: halted {h.get('strategy', '')} at {h['ts']} ({h['code']}{extra})")
    denials = report.get("denials", {})
    if denials:
        total = sum(d["count"] for d in denials.values())
        lines.append(f"Guard: denied {total} order(s):")
        for code, d in denials.items():
            lines.append(f"  {code}: {d['count']} (first {d['first']}, last {d['last']})")
    if not lines:
        lines.append("Guard: no halt, no denial.")
    return lines
