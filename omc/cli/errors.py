"""The one place where a user's mistake becomes one line on stderr and an exit code.

`omc.cli.app.main` runs the command; an exception that escapes it and is a user's or the
environment's mistake — a bad `OMC_*` setting, a database or Redis that cannot be reached, a
malformed candle file, a strategy looking ahead, another process writing the account — is
printed by `explain` as one line (no traceback; `omc --debug …` shows it). Anything else is
a bug and keeps its traceback.

Exit codes: 2 for bad input or settings, 1 for an environment that failed (database, Redis)
or a run that had to stop. Library modules are looked up in `sys.modules` only: an exception
of a library that was never imported cannot have been raised, and `omc --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

DEBUG_HINT = " (`omc --debug …` shows the traceback)"


def public_url(url: str) -> str:
    """A URL with its credentials masked (`omc.core.masking.mask_url`, imported late)."""
    from omc.core.masking import mask_url

    return mask_url(url)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0].strip()


def _settings_error(exc: Any) -> str:
    """A pydantic ValidationError as `OMC_FIELD: why; …` (the input is never echoed: it may
    be a password)."""
    prefix = "OMC_" if exc.title == "Settings" else ""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error.get("loc", ())) or "?"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{prefix}{field.upper() if prefix else field}: {message}")
    what = "configuration error" if prefix else f"invalid {exc.title}"
    return f"{what}: " + "; ".join(parts)


def _is(exc: BaseException, module: str, *names: str) -> bool:
    mod = sys.modules.get(module)
    return mod is not None and isinstance(exc, tuple(getattr(mod, n) for n in names))


def _database_url() -> str:
    try:
        from omc.cli.context import settings

        return public_url(settings().effective_database_url)
    except Exception:  # the settings themselves are broken: say nothing about the URL
        return "the database"


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(one line, exit code) for a user's or the environment's mistake; None for a bug."""
    if _is(exc, "pydantic", "ValidationError"):
        return _settings_error(exc), 2
    if _is(exc, "omc.lab.agents.errors", "LlmError"):
        return exc.line(), 2 if getattr(exc, "status", "") == "config_error" else 1  # type: ignore[attr-defined]
    if _is(exc, "omc.floor.strategy", "LookAheadError"):
        return f"look-ahead: {exc}", 1
    if _is(exc, "omc.floor.data", "BarsFileError"):
        return str(exc), 2
    if _is(exc, "omc.floor.trading.lease", "JournalWriterError"):
        return str(exc), 2
    if _is(exc, "sqlalchemy.exc", "ArgumentError", "NoSuchModuleError"):
        return f"OMC_DATABASE_URL is not a usable database URL: {_first_line(exc)}", 2
    if _is(exc, "sqlalchemy.exc", "OperationalError", "InterfaceError"):
        return f"database {_database_url()}: {_first_line(exc)}{DEBUG_HINT}", 1
    if _is(exc, "redis.exceptions", "RedisError"):
        from omc.cli.context import settings

        where = public_url(settings().redis_url or "")
        return f"Redis {where} (OMC_REDIS_URL): {_first_line(exc)}{DEBUG_HINT}", 1
    return None
