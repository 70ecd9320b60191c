"""Describing payloads in errors and the quarantine, the same way in every adapter.

`validation_summary(exc)` is the one-line reason of a pydantic `ValidationError`
(`prices.bid: Input should be a valid decimal; …`, at most 500 characters);
`json_text(body)` is the raw text kept for a body that could not be used (keys sorted,
anything JSON cannot hold as its `str`; a string passes through as it is); `short_repr(value)`
a value's repr cut to fit in a reason.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError


def validation_summary(exc: ValidationError, limit: int = 500) -> str:
    """`field.path: message; …` for every error of `exc`, cut to `limit` characters."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )[:limit]


def json_text(body: Any, limit: int | None = None) -> str:
    """`body` as JSON text for an error or the quarantine (a string is kept verbatim)."""
    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True, default=str)
    return text if limit is None else text[:limit]


def short_repr(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters with an ellipsis (a payload in a reason)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
