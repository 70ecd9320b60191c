"""Opaque cursors for keyset pagination: the sort key of a page's last item, encoded.

`encode(*values)` -> text; `decode(text, n)` -> the values, or `ApiError` 422 for a cursor
that was not made here. Pages are read with `limit + 1` rows to know whether more follow."""

from __future__ import annotations

import base64
import json
from typing import Any, NoReturn

from omc.api.errors import ApiError

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def encode(*values: Any) -> str:
    raw = json.dumps(list(values), default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, n: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        values = None
    if not isinstance(values, list) or len(values) != n:
        invalid()
    return values


def invalid() -> NoReturn:
    raise ApiError(422, "invalid_input", "cursor: not a cursor this API returned")
