"""Read-only data tools an LLM can call: the registry.

`TOOLS` maps a name to its `Tool`; `tool_schemas()` gives their OpenAI "function" tool
descriptions; `call_tool(name, args, engine=..., as_of=...)` runs one with the session's
database and as_of and returns a JSON-able result — or an error result (`ok: false`, one
clear `error` line) for an unknown tool, invalid arguments or a database failure, never an
exception. See `omc.lab.tools.base` for the result shape and `omc.lab.tools.ledgers` for the
tools.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from omc.core.time import ensure_utc
from omc.lab.tools.base import MAX_LIMIT, MAX_TEXT, Session, Tool, error_result
from omc.lab.tools.ledgers import LEDGER_TOOLS

TOOLS: dict[str, Tool] = {tool.name: tool for tool in LEDGER_TOOLS}


def tool_schemas() -> list[dict[str, Any]]:
    """Every tool's OpenAI "function" description, in registry order."""
    return [tool.schema() for tool in TOOLS.values()]


def _invalid(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "invalid arguments: " + "; ".join(parts)


def call_tool(
    name: str, args: dict[str, Any] | str | None, *, engine: Engine, as_of: datetime
) -> dict[str, Any]:
    """Run tool `name` with `args` (a dict, or the JSON text an LLM sends) at the session's
    `as_of`. Returns the tool's result, or an error result; never raises for bad input."""
    tool = TOOLS.get(name)
    if tool is None:
        return error_result(name, f"unknown tool {name!r}; tools: {', '.join(TOOLS)}")
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return error_result(name, f"arguments are not valid JSON: {exc.msg}")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return error_result(name, "arguments must be a JSON object")
    try:
        parsed = tool.input.model_validate(args)
    except ValidationError as exc:
        return error_result(name, _invalid(exc))
    try:
        return tool.run(parsed, Session(engine, ensure_utc(as_of)))
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return error_result(name, f"database error: {first}")
    except (ValueError, LookupError) as exc:
        return error_result(name, str(exc) or type(exc).__name__)


__all__ = ["MAX_LIMIT", "MAX_TEXT", "TOOLS", "Tool", "call_tool", "tool_schemas"]
