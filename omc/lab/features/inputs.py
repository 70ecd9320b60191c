"""A study's inputs: one symbol's bars plus the ledger frames its features need, each row
stamped with its *knowledge time* (`known_at`).

Knowledge time is when OMC could first have used a row: never its claimed timestamp alone.

    known_at = max(row end + declared lag, collected_at)

`row end` is the end of the period a row describes (a candle's close, the end of a
DeFiLlama day, the end of a sentiment hour, a news item's publication). `collected_at` is
when OMC stored it. One exception, **backfilled history**: a source in `PUBLICATION` that
declares `backfill_after` publishes objective history (exchange candles, DeFiLlama's daily
series, SEC filings with EDGAR acceptance times). A row of it stored more than
`backfill_after` after `row end + lag` was fetched as history, not observed live, and is known
at `row end + lag` — the moment the world (and a collector that was running) had it. Sources
without `backfill_after` (news, social posts, the sentiment built from them, exchange
announcements) never get that benefit: their timestamps are the publisher's claim, so an
item stored late is known late.

| source (ledger)              | row end          | lag  | backfilled when stored after |
|------------------------------|------------------|------|------------------------------|
| candles (Exchange)           | bar close        | 0    | close + 1 h                  |
| defillama daily (Glass)      | day end (ts+1 d) | 1 h  | day end + 1 h + 1 d          |
| sentiment hourly (Human)     | hour end         | 0    | never                        |
| news (Human)                 | published_at     | 0    | never                        |
| sec filings (Catalyst)       | accepted_at      | 0    | accepted + 1 d               |
| announcements (Catalyst)     | published_at     | 0    | never                        |

A CSV file has no storage time: its bars are known at their close. `StudyInputs.until(t)` is
the study as it was known at `t` (bars closed by `t`, ledger rows with `known_at <= t`): the
one-bar feature computation and the leakage check both use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.time import ensure_utc, timeframe_seconds
from omc.floor.data import Bars, load_csv
from omc.lab.plan import ResearchPlan
from omc.ledgers import pit

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BAR_COLUMNS = ["open", "high", "low", "close", "volume", "known_at"]
# how far before the first bar ledger rows are read (the longest lookback of any feature)
LEDGER_MARGIN = timedelta(days=40)
# which ledger frame each feature family reads
FAMILY_INPUTS: dict[str, str] = {
    "sentiment": "sentiment",
    "news_volume": "news",
    "tvl": "tvl",
    "fees": "fees",
    "catalyst": "events",
}


class InputError(ValueError):
    """The study's data cannot be loaded (no such file, no candles): one clear line."""


@dataclass(frozen=True)
class Publication:
    """A source's declared publication rule (see the module doc)."""

    period: timedelta  # row end = row time + period
    lag: timedelta = timedelta(0)
    backfill_after: timedelta | None = None  # None: an item stored late is known late


PUBLICATION: dict[str, Publication] = {
    "defillama": Publication(period=DAY, lag=HOUR, backfill_after=DAY),
    "sentiment": Publication(period=HOUR),
    "news": Publication(period=timedelta(0)),
    "sec": Publication(period=timedelta(0), backfill_after=DAY),
    "announcements": Publication(period=timedelta(0)),
}


def candle_publication(bar_seconds: float) -> Publication:
    return Publication(period=timedelta(seconds=bar_seconds), backfill_after=HOUR)


def known_at(row_time: pd.Series, collected_at: pd.Series | None, rule: Publication) -> pd.Series:
    """Knowledge time of rows (see the module doc); `collected_at` None = the row end."""
    published = pd.to_datetime(row_time, utc=True) + rule.period + rule.lag
    if collected_at is None:
        return published
    stored = pd.to_datetime(collected_at, utc=True)
    known = published.where(published >= stored, stored)
    if rule.backfill_after is not None:
        backfilled = stored > published + rule.backfill_after
        known = known.where(~backfilled, published)
    return known


@dataclass
class StudyInputs:
    """Bars (index: bar open time, UTC) and ledger frames (each with `known_at`)."""

    plan: ResearchPlan
    symbol: str
    bars: pd.DataFrame
    ledgers: dict[str, pd.DataFrame]
    as_of: datetime
    source: str
    coin: str = ""
    protocol: str | None = None
    bar_seconds: float = 60.0

    @property
    def close_times(self) -> pd.DatetimeIndex:
        """Each bar's close time (open + the bar length)."""
        return pd.DatetimeIndex(self.bars.index + pd.Timedelta(seconds=self.bar_seconds))

    def until(self, moment: datetime | pd.Timestamp) -> StudyInputs:
        """The inputs as known at `moment`: bars closed by then, rows with known_at <= it."""
        cut = pd.Timestamp(moment)
        bars = self.bars[self.close_times <= cut]
        ledgers = {
            name: frame[frame["known_at"] <= cut] if len(frame) else frame
            for name, frame in self.ledgers.items()
        }
        return replace(self, bars=bars, ledgers=ledgers, as_of=cut.to_pydatetime())


def _bars_frame(bars: Bars, bar_seconds: float, collected: pd.Series | None) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(bars.ts, unit="ns", utc=True), name="ts")
    frame = pd.DataFrame(
        {
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        },
        index=index,
    ).astype("float64")
    opened = pd.Series(index, index=index)
    stored = None if collected is None else collected.set_axis(index)
    frame["known_at"] = known_at(opened, stored, candle_publication(bar_seconds))
    return frame


def _sorted(frame: pd.DataFrame, *by: str) -> pd.DataFrame:
    return frame.sort_values(["known_at", *by], kind="stable").reset_index(drop=True)


def _empty(*columns: str) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="float64") for name in columns})
    frame["known_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def coin_of(symbol: str) -> str:
    return symbol.split("/")[0].strip().upper()


def protocol_for(coin: str, settings: Settings | None = None) -> str | None:
    """The tracked DeFiLlama protocol whose coins include `coin` (configured mapping)."""
    mapping = (settings or Settings()).defillama_protocol_coins
    for protocol, coins in mapping.items():
        if coin.upper() in (str(c).upper() for c in coins or ()):
            return str(protocol)
    return None


def load_inputs(plan: ResearchPlan, *, engine: Engine | None, as_of: datetime) -> StudyInputs:
    """Bars from `plan.data_file` (CSV) or the Exchange ledger, and the ledger frames the
    plan's feature families read, all point-in-time at `as_of`. Missing ledger data (or no
    database for a CSV study) gives an empty frame: the checks report it."""
    moment = ensure_utc(as_of)
    symbol = plan.symbols[0]
    if plan.data_file:
        path = Path(plan.data_file)
        if not path.is_file():
            raise InputError(f"no such candle file: {path}")
        try:
            loaded = load_csv(path, symbol)
        except (ValueError, KeyError) as exc:
            raise InputError(f"cannot read candles from {path}: {exc}") from exc
        bar_seconds = loaded.bar_seconds
        bars = _bars_frame(loaded, bar_seconds, None)
        bars = bars[bars["known_at"] <= pd.Timestamp(moment)]
        source = f"file:{path}"
    else:
        if engine is None:
            raise InputError("no candle file and no database to read candles from")
        bar_seconds = float(timeframe_seconds(plan.timeframe))
        frame = pit.candles(engine, plan.exchange, symbol, plan.timeframe, as_of=moment)
        if frame.empty:
            raise InputError(
                f"no {plan.timeframe} candles for {symbol} on {plan.exchange} stored by "
                f"{moment.isoformat()}"
            )
        loaded = Bars.from_frame(symbol, frame.rename(columns={"ts": "timestamp"}))
        bars = _bars_frame(loaded, bar_seconds, frame["collected_at"])
        source = f"db:{plan.exchange}:{symbol}:{plan.timeframe}"
    coin = coin_of(symbol)
    protocol = plan.protocol or protocol_for(coin)
    inputs = StudyInputs(plan, symbol, bars, {}, moment, source, coin, protocol, bar_seconds)
    start = (bars.index[0].to_pydatetime() - LEDGER_MARGIN) if len(bars) else moment
    inputs.ledgers.update(load_ledgers(engine, plan.features, coin, protocol, moment, start))
    return inputs


def load_ledgers(
    engine: Engine | None,
    families: Iterable[str],
    coin: str,
    protocol: str | None,
    as_of: datetime,
    start: datetime,
) -> dict[str, pd.DataFrame]:
    """The ledger frames `families` read (each with `known_at`), point-in-time at `as_of`,
    rows from `start` on (empty frames without a database): what a study loads, and what a
    promoted model reloads as trading goes on."""
    needed = {FAMILY_INPUTS[f] for f in families if f in FAMILY_INPUTS}
    return {
        name: (
            _load_ledger(engine, name, coin, protocol, as_of, start)
            if engine is not None
            else EMPTY[name]()
        )
        for name in sorted(needed)
    }


EMPTY = {
    "sentiment": lambda: _empty("hour", "count", "mean_sentiment", "weighted_sentiment"),
    "news": lambda: _empty("published_at", "source", "source_id"),
    "tvl": lambda: _empty("ts", "value"),
    "fees": lambda: _empty("ts", "value"),
    "events": lambda: _empty("published_at", "source", "event_id", "kind", "impact"),
}


def _load_ledger(
    engine: Engine,
    name: str,
    coin: str,
    protocol: str | None,
    as_of: datetime,
    start: datetime,
) -> pd.DataFrame:
    if name == "sentiment":
        return _sentiment(engine, coin, as_of, start)
    if name == "news":
        news = pit.news(engine, as_of=as_of, coin=coin, start=start)
        if news.empty:
            return EMPTY["news"]()
        news["known_at"] = known_at(news["published_at"], news["collected_at"], PUBLICATION["news"])
        return _sorted(news[["published_at", "source", "source_id", "known_at"]], "published_at")
    if name in ("tvl", "fees"):
        if protocol is None:
            return EMPTY[name]()
        rows = pit.protocol_metrics(
            engine, as_of=as_of, protocol=protocol, metric=name, chain="",
            start=start - DAY * 10,
        )  # fmt: skip
        rows = rows[rows["source"] == "defillama"]
        if rows.empty:
            return EMPTY[name]()
        rule = PUBLICATION["defillama"]
        rows = rows.assign(known_at=known_at(rows["ts"], rows["collected_at"], rule))
        return _sorted(rows[["ts", "value", "known_at"]], "ts")
    if name == "events":
        events = pit.events(engine, as_of=as_of, coin=coin)
        if events.empty:
            return EMPTY["events"]()
        parts = []
        for source, group in events.groupby("source", sort=True):
            rule = PUBLICATION.get(str(source), Publication(period=timedelta(0)))
            parts.append(
                group.assign(known_at=known_at(group["published_at"], group["collected_at"], rule))
            )
        frame = pd.concat(parts)
        columns = ["published_at", "source", "event_id", "kind", "impact", "known_at"]
        return _sorted(frame[columns], "published_at", "source", "event_id")
    raise KeyError(name)


def _sentiment(engine: Engine, coin: str, as_of: datetime, start: datetime) -> pd.DataFrame:
    hourly = pit.sentiment_hourly(engine, as_of=as_of, coin=coin, start=start)
    if hourly.empty:
        return EMPTY["sentiment"]()
    # pit's known_at: the hour's end, or later when an item that changed it was stored late
    hourly["known_at"] = known_at(hourly["hour"], hourly["known_at"], PUBLICATION["sentiment"])
    columns = ["hour", "count", "mean_sentiment", "weighted_sentiment", "known_at"]
    return _sorted(hourly[columns], "hour")


def bar_close_ns(inputs: StudyInputs) -> np.ndarray:
    """Bar close times as epoch nanoseconds (the moments features are computed at)."""
    return np.asarray(inputs.close_times.as_unit("ns").asi8, dtype=np.int64)
