"""The Lab's catalog: which candle series can be studied, and which coins the other ledgers know.

The planner (`omc.lab.planner.plan_goal`) resolves a goal's coin against a `Catalog` instead of
guessing. A catalog comes from one of two places:

* `catalog_from_db(engine, as_of=...)`: every candle series in the Exchange ledger
  (exchange, symbol, timeframe, bar count, first/last bar) plus, per coin, the ledgers that
  mention it (human / glass / catalyst / exchange) — both read through `omc.ledgers.pit`
  (`pit.candle_series`, `pit.available_coins`) with `as_of`, so a study never plans on data
  stored after its point-in-time cut.
* `catalog_for(engine, data_file=..., symbol=..., as_of=...)` picks one of the two below.
* `catalog_from_file(path, symbol=..., engine=..., as_of=...)`: one candles CSV
  (`timestamp,open,high,low,close,volume`, read by `omc.floor.data.load_csv`). Its timeframe
  is the median bar spacing; its symbol is `symbol`, else the file name (`BTC_USDT-5m.csv`
  → `BTC/USDT`), else unknown (`Series.symbol == ""`; the planner then takes the goal's
  coin, or the file stem, and says so). With an engine, the coins' ledgers come from the DB.

A file that cannot be read raises `CatalogError` (a ValueError) with one clear line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from omc.core.config import get_settings
from omc.core.time import ensure_utc, iso_utc, utcnow
from omc.floor.data import load_csv
from omc.floor.divergence.sides import timeframe_of
from omc.ledgers import pit

_PAIR_STEM = re.compile(r"^([A-Za-z0-9]{1,15})_([A-Za-z0-9]{1,15})$")


class CatalogError(ValueError):
    """The catalog cannot be built (a missing or unreadable candles file)."""


@dataclass(frozen=True)
class Series:
    """One candle series a study can use. `data_file` is set for a `--data` file (then
    `exchange` is "file"); `symbol` is "" when a file's symbol is unknown."""

    exchange: str
    symbol: str
    timeframe: str
    bars: int
    first: datetime | None = None
    last: datetime | None = None
    data_file: str | None = None

    @property
    def base(self) -> str:
        """The coin: the part of the symbol before '/' (upper case)."""
        return self.symbol.split("/")[0].upper()

    def describe(self) -> str:
        """'binance ETH/USDT 1h (8,760 bars, 2024-01-01T00:00:00Z … 2024-12-31T23:00:00Z)'."""
        where = f"file {self.data_file}" if self.data_file else self.exchange
        span = ""
        if self.first is not None and self.last is not None:
            span = f", {iso_utc(self.first)} … {iso_utc(self.last)}"
        name = self.symbol or "(symbol unknown)"
        return f"{where} {name} {self.timeframe} ({self.bars:,} bars{span})"

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "bars": self.bars,
            "first": iso_utc(self.first) if self.first else None,
            "last": iso_utc(self.last) if self.last else None,
            "data_file": self.data_file,
        }


@dataclass(frozen=True)
class Catalog:
    """What exists to study. `coins`: coin (upper case) -> sorted ledger names that mention it
    ("catalyst", "exchange", "glass", "human"). `source`: "db" or "file:<path>".
    `protocols`: the tracked DeFiLlama protocol slugs -> the coins each concerns (settings)."""

    series: tuple[Series, ...]
    coins: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "db"
    as_of: datetime | None = None
    protocols: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def data_file(self) -> str | None:
        return self.series[0].data_file if self.source.startswith("file:") else None

    def bases(self) -> list[str]:
        """The coins with at least one candle series, sorted."""
        return sorted({s.base for s in self.series if s.symbol})

    def ledgers_of(self, coin: str) -> tuple[str, ...]:
        return self.coins.get(coin.upper(), ())

    def matching(
        self,
        *,
        coin: str | None = None,
        symbol: str | None = None,
        exchange: str | None = None,
        timeframe: str | None = None,
    ) -> list[Series]:
        """Series whose symbol is `symbol` (exact, case-insensitive) or whose base is `coin`,
        on `exchange` and `timeframe` when given."""
        out = []
        for s in self.series:
            if symbol is not None and s.symbol.upper() != symbol.upper():
                continue
            if coin is not None and s.base != coin.upper():
                continue
            if exchange is not None and s.exchange.lower() != exchange.lower():
                continue
            if timeframe is not None and s.timeframe != timeframe:
                continue
            out.append(s)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "as_of": iso_utc(self.as_of) if self.as_of else None,
            "series": [s.to_json() for s in self.series],
            "coins": {coin: list(ledgers) for coin, ledgers in sorted(self.coins.items())},
            "protocols": {p: list(coins) for p, coins in sorted(self.protocols.items())},
        }


def tracked_protocols() -> dict[str, tuple[str, ...]]:
    """The configured DeFiLlama protocols and their coins (`defillama_protocol_coins`)."""
    mapping = get_settings().defillama_protocol_coins
    return {str(p): tuple(str(c).upper() for c in coins) for p, coins in mapping.items()}


def _coins(engine: Engine, as_of: datetime) -> dict[str, tuple[str, ...]]:
    frame = pit.available_coins(engine, as_of=as_of)
    return {str(row.coin): tuple(row.ledgers) for row in frame.itertuples(index=False)}


def catalog_from_db(engine: Engine, *, as_of: datetime | None = None) -> Catalog:
    """Every candle series and every coin's ledgers stored by `as_of` (default: now)."""
    moment = ensure_utc(as_of) if as_of is not None else utcnow()
    frame = pit.candle_series(engine, as_of=moment)
    series = tuple(
        Series(
            exchange=str(row.exchange),
            symbol=str(row.symbol),
            timeframe=str(row.timeframe),
            bars=int(row.bars),
            first=_when(row.first),
            last=_when(row.last),
        )
        for row in frame.itertuples(index=False)
    )
    return Catalog(
        series=series,
        coins=_coins(engine, moment),
        source="db",
        as_of=moment,
        protocols=tracked_protocols(),
    )


def symbol_from_filename(path: str | Path) -> str | None:
    """'BTC_USDT-5m.csv' -> 'BTC/USDT'; None when the name does not spell a pair."""
    match = _PAIR_STEM.match(Path(path).stem.split("-")[0])
    return f"{match.group(1).upper()}/{match.group(2).upper()}" if match else None


def catalog_from_file(
    path: str | Path,
    *,
    symbol: str | None = None,
    engine: Engine | None = None,
    as_of: datetime | None = None,
) -> Catalog:
    """The one series in a candles CSV; coins' ledgers from `engine` when given."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"no such candles file: {path}")
    name = (symbol or symbol_from_filename(path) or "").upper()
    try:
        bars = load_csv(path, symbol=name or path.stem)
    except (ValueError, KeyError, OSError, pd.errors.ParserError) as exc:
        raise CatalogError(f"cannot read candles file {path}: {exc}") from exc
    if len(bars) < 2:
        raise CatalogError(f"candles file {path} has {len(bars)} bar(s): a study needs more")
    series = Series(
        exchange="file",
        symbol=name,
        timeframe=timeframe_of(bars.bar_seconds),
        bars=len(bars),
        first=bars.time(0),
        last=bars.time(len(bars) - 1),
        data_file=str(path),
    )
    moment = ensure_utc(as_of) if as_of is not None else utcnow()
    coins = _coins(engine, moment) if engine is not None else {}
    return Catalog(
        series=(series,),
        coins=coins,
        source=f"file:{path}",
        as_of=moment,
        protocols=tracked_protocols(),
    )


def catalog_for(
    engine: Engine | None,
    *,
    data_file: str | Path | None = None,
    symbol: str | None = None,
    as_of: datetime | None = None,
) -> Catalog:
    """The catalog a study plans against: the `data_file`'s when given (coins' ledgers from
    `engine` if any), else the database's. CatalogError when there is neither."""
    if data_file is not None:
        return catalog_from_file(data_file, symbol=symbol, engine=engine, as_of=as_of)
    if engine is None:
        raise CatalogError("no database and no --data file: nothing to study")
    return catalog_from_db(engine, as_of=as_of)


def _when(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


__all__ = [
    "Catalog",
    "CatalogError",
    "Series",
    "catalog_for",
    "catalog_from_db",
    "catalog_from_file",
    "symbol_from_filename",
]
