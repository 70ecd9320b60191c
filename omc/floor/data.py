"""Market data for the Floor: the `Bars` container, and loaders (CSV, the Candle table, ticks,
synthetic random walks).

`Bars` holds one symbol's OHLCV as contiguous float64 arrays plus UTC timestamps (int64 ns).
Floats are the fast path's currency; the event-driven engine converts a price to an exact
`Decimal` only when it fills an order (`Decimal(repr(x))` gives back the text the CSV or
database held, so fills are exact to the source's digits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Engine, select

from omc.core.time import timeframe_seconds, utcnow
from omc.ledgers import pit
from omc.ledgers.models import Candle

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def to_decimal(value: float) -> Decimal:
    """A float price/size as the exact decimal of its shortest repr (the source's text)."""
    return Decimal(repr(float(value)))


@dataclass(frozen=True)
class Bars:
    """One symbol's candles, oldest first. `ts` is the bar's open time, UTC, in epoch ns."""

    symbol: str
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Bars.{name} has {len(getattr(self, name))} rows, ts has {n}")
        if n > 1 and not bool(np.all(np.diff(self.ts) > 0)):
            raise ValueError("Bars timestamps must be strictly increasing")

    def __len__(self) -> int:
        return len(self.ts)

    def time(self, i: int) -> datetime:
        """Bar `i`'s open time as an aware UTC datetime."""
        return datetime.fromtimestamp(int(self.ts[i]) / 1e9, tz=UTC)

    @property
    def bar_seconds(self) -> float:
        """The data's bar spacing (median gap), in seconds; 60 when there is one bar."""
        if len(self.ts) < 2:
            return 60.0
        return float(np.median(np.diff(self.ts))) / 1e9

    def slice(self, start: int, stop: int | None = None) -> Bars:
        s = slice(start, stop)
        return Bars(
            self.symbol,
            self.ts[s],
            self.open[s],
            self.high[s],
            self.low[s],
            self.close[s],
            self.volume[s],
        )

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with a UTC DatetimeIndex and Open/High/Low/Close/Volume columns."""
        index = pd.DatetimeIndex(pd.to_datetime(self.ts, unit="ns", utc=True), name="timestamp")
        return pd.DataFrame(
            {
                "Open": self.open,
                "High": self.high,
                "Low": self.low,
                "Close": self.close,
                "Volume": self.volume,
            },
            index=index,
        )

    @classmethod
    def from_frame(cls, symbol: str, frame: pd.DataFrame) -> Bars:
        """From a frame with a `timestamp` column or DatetimeIndex and OHLCV columns (any case)."""
        cols = {str(c).lower(): c for c in frame.columns}
        if "timestamp" in cols:
            stamps = pd.to_datetime(frame[cols["timestamp"]], utc=True)
        else:
            stamps = pd.to_datetime(frame.index, utc=True)
        ts = np.asarray(pd.DatetimeIndex(stamps).as_unit("ns").asi8, dtype=np.int64)

        def col(name: str) -> FloatArray:
            if name not in cols:
                if name == "volume":
                    return np.full(len(frame), np.nan)
                raise ValueError(f"missing column {name!r}")
            return np.ascontiguousarray(frame[cols[name]].to_numpy(dtype=np.float64))

        return cls(symbol, ts, col("open"), col("high"), col("low"), col("close"), col("volume"))

    @classmethod
    def from_ticks(
        cls,
        symbol: str,
        ts: Sequence[datetime] | IntArray,
        price: Sequence[float] | FloatArray,
        volume: Sequence[float] | FloatArray | None = None,
    ) -> Bars:
        """Ticks as degenerate bars (open = high = low = close = the traded/quoted price), so
        the same engine and strategies run tick by tick: an order placed on tick k fills on
        tick k+1."""
        if len(ts) and isinstance(ts[0], datetime):
            stamps = pd.DatetimeIndex(list(ts)).tz_convert("UTC").as_unit("ns").asi8  # type: ignore[arg-type]
        else:
            stamps = np.asarray(ts, dtype=np.int64)
        p = np.ascontiguousarray(np.asarray(price, dtype=np.float64))
        v = (
            np.full(len(p), np.nan)
            if volume is None
            else np.ascontiguousarray(np.asarray(volume, dtype=np.float64))
        )
        return cls(symbol, np.asarray(stamps, dtype=np.int64), p, p, p, p, v)


class BarsFileError(ValueError):
    """A candle file that cannot be read (missing, empty, a bad value, a missing column)."""


def load_csv(path: str | Path, symbol: str | None = None) -> Bars:
    """Read `timestamp,open,high,low,close,volume` (ISO-8601 UTC timestamps). A file that
    cannot be read raises `BarsFileError` naming the file and why."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
        name = symbol or path.stem.split("-")[0].replace("_", "/")
        return Bars.from_frame(name, frame)
    except FileNotFoundError:
        raise BarsFileError(f"candle file {path}: no such file") from None
    except IsADirectoryError:
        raise BarsFileError(f"candle file {path}: is a directory") from None
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BarsFileError(f"candle file {path}: {reason}") from None


def load_db(
    engine: Engine,
    symbol: str,
    timeframe: str,
    exchange: str | None = None,
    as_of: datetime | None = None,
) -> Bars:
    """Candles of (`exchange`, `symbol`, `timeframe`) as stored by `as_of` (default: now),
    oldest first — read through the point-in-time module, like every Floor read.

    Without `exchange` the symbol must be stored for exactly one exchange."""
    timeframe_seconds(timeframe)  # validates
    if exchange is None:
        with engine.connect() as conn:
            exchanges = sorted(
                conn.execute(
                    select(Candle.exchange)
                    .where(Candle.symbol == symbol, Candle.timeframe == timeframe)
                    .distinct()
                ).scalars()
            )
        if len(exchanges) > 1:
            raise LookupError(
                f"{symbol} {timeframe} is stored for several exchanges {exchanges}: pass --exchange"
            )
        exchange = exchanges[0] if exchanges else ""
    frame = pit.candles(engine, exchange, symbol, timeframe, as_of=as_of or utcnow())
    if frame.empty:
        where = f" on {exchange}" if exchange else ""
        raise LookupError(f"no {timeframe} candles for {symbol}{where} in the database")
    return Bars.from_frame(symbol, frame.rename(columns={"ts": "timestamp"}))


def align(data: Mapping[str, Bars]) -> dict[str, Bars]:
    """Restrict several symbols to their common timestamps (inner join), in order."""
    if len(data) <= 1:
        return dict(data)
    common = None
    for bars in data.values():
        common = bars.ts if common is None else np.intersect1d(common, bars.ts)
    assert common is not None
    out: dict[str, Bars] = {}
    for key, bars in data.items():
        idx = np.searchsorted(bars.ts, common)
        out[key] = Bars(
            bars.symbol,
            common.copy(),
            bars.open[idx],
            bars.high[idx],
            bars.low[idx],
            bars.close[idx],
            bars.volume[idx],
        )
    return out


def synthetic(source: Bars, n: int, seed: int = 0, symbol: str | None = None) -> Bars:
    """`n` bars of a seeded random walk whose log returns (and intrabar ranges, volumes) are
    resampled from `source`: the statistics of real data at any length, reproducibly."""
    rng = np.random.default_rng(seed)
    c = source.close
    rets = np.diff(np.log(c))
    pick = rng.integers(0, len(rets), size=n)
    # the open of bar t sits at the previous close; intrabar excursions from the source bar
    close = c[0] * np.exp(np.cumsum(rets[pick]))
    open_ = np.empty(n)
    open_[0] = c[0]
    open_[1:] = close[:-1]
    src = pick + 1
    up = source.high[src] / np.maximum(source.open[src], source.close[src])
    down = source.low[src] / np.minimum(source.open[src], source.close[src])
    high = np.maximum(open_, close) * np.maximum(up, 1.0)
    low = np.minimum(open_, close) * np.minimum(down, 1.0)
    step = int(np.median(np.diff(source.ts)))
    ts = source.ts[0] + step * np.arange(n, dtype=np.int64)
    vol = source.volume[src].copy()
    return Bars(symbol or source.symbol, ts, open_, high, low, close, vol)
