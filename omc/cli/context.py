"""What every CLI command shares: settings, the database (migrated on open), the console."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from sqlalchemy import Engine

from omc.core.config import Settings, get_settings
from omc.core.db import make_engine
from omc.migrations import upgrade

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return get_settings()


def setup_logging() -> None:
    level = settings().log_level.upper()
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
    )
    for noisy in ("alembic", "matplotlib", "apscheduler.scheduler", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def fail(message: str, code: int = 2) -> NoReturn:
    """A user's mistake: one red line on stderr, exit `code`, no traceback."""
    err_console.print(f"[red]error:[/] {message}", soft_wrap=True, markup=True, highlight=False)
    raise typer.Exit(code)


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
    db = make_engine(settings().effective_database_url)
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
