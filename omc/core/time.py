"""Time: every timestamp in OMC is a timezone-aware UTC `datetime`; helpers to get there."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_TIMEFRAME_RE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Return `value` in UTC. A naive datetime is refused: its zone is unknowable."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: timestamps must carry a time zone")
    return value.astimezone(UTC)


def from_epoch_ms(ms: int | float) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def from_epoch_s(seconds: int | float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def to_epoch_ms(value: datetime) -> int:
    return (ensure_utc(value) - EPOCH) // timedelta(milliseconds=1)


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 date or datetime; a value without a zone is taken as UTC."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_instant(value: object) -> datetime:
    """An instant as APIs send it: an aware datetime, epoch milliseconds (a number or a string
    of digits) or ISO-8601 text (a value without a zone is UTC)."""
    if isinstance(value, datetime):
        return ensure_utc(value) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_epoch_ms(int(value))
    if isinstance(value, str) and value.strip().isdigit():
        return from_epoch_ms(int(value.strip()))
    return parse_utc(str(value))


def timeframe_seconds(timeframe: str) -> int:
    """'5m' -> 300. Raises ValueError on an unknown timeframe."""
    match = _TIMEFRAME_RE.match(timeframe)
    if not match:
        raise ValueError(f"unknown timeframe {timeframe!r} (expected e.g. 1m, 5m, 1h, 1d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def floor_time(value: datetime, seconds: float) -> datetime:
    """Floor an aware datetime to a multiple of `seconds` since the epoch."""
    step = timedelta(seconds=seconds)
    return EPOCH + ((ensure_utc(value) - EPOCH) // step) * step


def iso_utc(value: datetime) -> str:
    """ISO-8601 in UTC with a `Z` suffix, as every export writes timestamps."""
    return ensure_utc(value).isoformat().replace("+00:00", "Z")
