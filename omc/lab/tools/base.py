"""What every Lab data tool shares: the input base, the session's `as_of`, bounded JSON results.

A tool is a read-only function over one `omc.ledgers.pit` read. Its input is a pydantic model
(`ToolInput`), which is also its JSON-schema description for an LLM. The caller supplies the
database and the session's `as_of`; an input may ask for an *earlier* `as_of` (to see what
was known then), never a later one: a later one is clamped to the session's and the result
says so in `notes`.

A result is plain JSON (str, int, float, bool, None, lists, dicts; times as ISO 8601 UTC):

    {"ok": true, "tool": NAME, "as_of": ISO, "total": N, "returned": K, "truncated": bool,
     "columns": [...], "rows": [{column: value}, ...], "notes": [...]}

`total` counts every matching row; at most `limit` of them are returned (the latest by
default, `keep="earliest"` for the first ones) and `truncated` says whether rows were left
out. Long texts (titles, bodies) are cut to `MAX_TEXT` characters, marked with an ellipsis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Engine

from omc.core.time import ensure_utc

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_TEXT = 400


@dataclass(frozen=True)
class Session:
    """What the caller (never the LLM) decides: the database and the session's as_of."""

    engine: Engine
    as_of: datetime


class ToolInput(BaseModel):
    """Fields every tool accepts: the knowledge time to read at."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    as_of: datetime | None = Field(
        default=None,
        description=(
            "Read the ledgers as OMC knew them at this moment (ISO 8601 with a time zone, "
            "e.g. 2024-03-01T12:00:00Z). Defaults to the session's as_of; a later value is "
            "clamped to the session's as_of."
        ),
    )

    @field_validator("as_of")
    @classmethod
    def _aware_as_of(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("a time needs a time zone, e.g. 2024-03-01T12:00:00Z")
    return None if value is None else ensure_utc(value)


class WindowInput(ToolInput):
    """A time window and a row cap, for tools that return rows over time."""

    start: datetime | None = Field(
        default=None,
        description="Earliest row time to return (inclusive, ISO 8601 with a time zone).",
    )
    end: datetime | None = Field(
        default=None,
        description="Latest row time to return (inclusive, ISO 8601 with a time zone).",
    )
    limit: int = Field(
        default=DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description=f"At most this many rows are returned (1..{MAX_LIMIT}).",
    )
    keep: Literal["latest", "earliest"] = Field(
        default="latest",
        description=(
            "When more rows match than `limit`, keep the latest ones (default) or the "
            "earliest ones. Rows are always returned oldest first."
        ),
    )

    @field_validator("start", "end")
    @classmethod
    def _aware_window(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @model_validator(mode="after")
    def _ordered(self) -> WindowInput:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


def resolve_as_of(requested: datetime | None, session: Session) -> tuple[datetime, list[str]]:
    """The as_of to read at (never later than the session's) and a note when clamped."""
    ceiling = ensure_utc(session.as_of)
    if requested is None:
        return ceiling, []
    if requested > ceiling:
        return ceiling, [
            f"as_of {iso(requested)} is after the session's as_of {iso(ceiling)}: "
            "clamped to the session's as_of"
        ]
    return requested, []


def iso(value: datetime | pd.Timestamp) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """A plain JSON value: NaN/NaT -> None, times -> ISO UTC, numpy/Decimal -> numbers."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, list | tuple | set | np.ndarray):
        items = sorted(value) if isinstance(value, set) else list(value)
        return [jsonable(item) for item in items]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return None if value is pd.NaT else str(value)


def frame_result(
    name: str,
    frame: pd.DataFrame,
    *,
    as_of: datetime,
    limit: int = MAX_LIMIT,
    keep: str = "latest",
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """A bounded JSON result of `frame` (rows in the frame's order, oldest first)."""
    total = len(frame)
    shown = frame.tail(limit) if keep == "latest" else frame.head(limit)
    columns = [str(c) for c in frame.columns]
    rows = [
        {column: jsonable(value) for column, value in zip(columns, record, strict=True)}
        for record in shown.itertuples(index=False, name=None)
    ]
    notes = list(notes or [])
    if total > len(rows):
        notes.append(
            f"{total} rows match, {len(rows)} returned ({keep}): narrow start/end or raise "
            f"limit (at most {MAX_LIMIT})"
        )
    return {
        "ok": True,
        "tool": name,
        "as_of": iso(as_of),
        "total": total,
        "returned": len(rows),
        "truncated": total > len(rows),
        "columns": columns,
        "rows": rows,
        "notes": notes,
    }


def error_result(name: str, message: str) -> dict[str, Any]:
    return {"ok": False, "tool": name, "error": message}


OPTIONS_EXCLUDED = {"as_of", "limit", "keep"}


@dataclass(frozen=True)
class Tool:
    """One LLM-callable, read-only data tool: an input model and the pit read it runs (called
    as `read(engine, as_of=..., **the input's other fields)`)."""

    name: str
    description: str
    input: type[ToolInput]
    read: Callable[..., pd.DataFrame]

    def run(self, args: ToolInput, session: Session) -> dict[str, Any]:
        as_of, notes = resolve_as_of(args.as_of, session)
        options = {name: getattr(args, name) for name in type(args).model_fields}
        for name in OPTIONS_EXCLUDED:
            options.pop(name, None)
        frame = self.read(session.engine, as_of=as_of, **options)
        return frame_result(
            self.name,
            frame,
            as_of=as_of,
            limit=getattr(args, "limit", MAX_LIMIT),
            keep=getattr(args, "keep", "earliest"),  # listings: their first rows
            notes=notes,
        )

    def schema(self) -> dict[str, Any]:
        """The OpenAI "function" tool description (name, description, JSON-schema parameters)."""
        parameters = self.input.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        properties = parameters.get("properties", {})
        for field in properties.values():
            field.pop("title", None)
        required = parameters.get("required", [])
        # what the tool needs first, then the common options (as_of, window, limit)
        parameters["properties"] = {
            name: properties[name]
            for name in sorted(properties, key=lambda n: (n not in required, n == "as_of"))
        }
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }
