"""Database types and value rules every table shares: the declarative `Base`, exact decimals,
aware UTC timestamps, and text cleaned at the edge.

* `ExactDecimal` stores prices and sizes exactly: PostgreSQL `NUMERIC`, SQLite text (SQLite's
  NUMERIC affinity would silently round to a float).
* `UTCDateTime` stores aware UTC datetimes: PostgreSQL `timestamptz`, SQLite fixed-width ISO
  text (lexicographic order == time order) and gives them back aware.
* Text is cleaned at this edge, for every text and JSON column: control characters other than
  tab / newline / carriage return (NUL above all, which PostgreSQL text cannot hold and which
  would fail a whole COPY batch) are removed, lone surrogates become U+FFFD (`clean_control`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData, Numeric, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

from omc.core.time import ensure_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every bounded context's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def to_decimal(value: object) -> Decimal:
    """Exact decimal from a string, int, Decimal or float (floats via their shortest repr)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_control(value: str) -> str:
    """`value` without control characters (tab, newline, CR kept) and lone surrogates."""
    if value.isprintable():
        return value
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))


def clean_json(value: Any) -> Any:
    """`clean_control` applied to every string (keys included) inside a JSON value."""
    if isinstance(value, str):
        return clean_control(value)
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def decimal_text(value: Decimal) -> str:
    """Plain positional text of a decimal, without exponent or trailing zeros ('0.0000533')."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, canonical text on SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = to_decimal(value)
        return str(number) if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp: timestamptz on PostgreSQL, fixed-width ISO text on SQLite."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"not a datetime: {value!r}")
        value = ensure_utc(value)
        return value.isoformat(timespec="microseconds") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
