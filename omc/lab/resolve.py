"""Which series and horizon a goal means: the planner's catalog look-ups, which may end in a
clarifying question (`Ask`) instead of a guess.

`file_series` (the `--data` file's one series, and its symbol), `db_series` (the stored
series the goal's coin / pair / exchange / timeframe pick out: exactly one, or a question
listing what exists) and `horizon_bars` (a horizon in bars, or a duration converted with the
timeframe; shorter than one bar is a question, a fraction of a bar is rounded). Each appends
what it assumed, in words, to `notes`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from omc.core.time import timeframe_seconds
from omc.lab.catalog import Catalog, Series
from omc.lab.goal import GoalTerms

MAX_HORIZON = 10_000


class Ask(Exception):
    """Control flow: the planner stops with one question."""

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.question = question


def bars_text(n: int, timeframe: str) -> str:
    return f"{n} bar{'s' if n != 1 else ''} of {timeframe}"


def _options(series: list[Series]) -> str:
    return "; ".join(s.describe() for s in series)


def file_series(
    catalog: Catalog, terms: GoalTerms, symbol: str | None, timeframe: str | None, notes: list[str]
) -> tuple[Series, str]:
    """The file catalog's series and the study's symbol: `symbol`, else the file name's pair,
    else the goal's coin, else the file stem (each choice a note)."""
    series = catalog.series[0]
    named = terms.pairs[:1] or terms.coins[:1]
    if symbol:
        chosen = symbol.upper()
        if series.symbol and series.symbol != chosen:
            notes.append(
                f"--symbol {chosen} names the file's series (its name says {series.symbol})"
            )
    elif series.symbol:
        chosen = series.symbol
        notes.append(f"the file's symbol is {chosen} (from its name)")
        if named and named[0].split("/")[0] != series.base:
            notes.append(f"the goal names {named[0]} but the study is on the file ({chosen})")
    elif named:
        chosen = named[0]
        notes.append(f"the file's name does not give its pair: its coin is the goal's, {chosen}")
    else:
        chosen = re.sub(r"[^A-Z0-9/]", "", Path(series.data_file or "data").stem.upper()) or "DATA"
        notes.append(
            f"the file's coin is unknown (name it in the goal or pass --symbol): it is called "
            f"{chosen}, and no other ledger's data can be matched to it"
        )
    if timeframe and timeframe != series.timeframe:
        notes.append(
            f"--timeframe {timeframe} ignored: the file's bars are {series.timeframe} apart"
        )
    notes.append(f"data: {series.describe()}, timeframe from the median bar spacing")
    return series, chosen


def _protocol_coin(catalog: Catalog, protocol: str) -> str | None:
    """The one coin of `protocol` that has stored candles (None when none or several)."""
    coins = [c for c in catalog.protocols.get(protocol, ()) if catalog.matching(coin=c)]
    return coins[0] if len(coins) == 1 else None


def db_series(
    catalog: Catalog,
    terms: GoalTerms,
    symbol: str | None,
    exchange: str | None,
    timeframe: str | None,
    notes: list[str],
) -> tuple[Series, str]:
    """The one stored series meant by `symbol` (else the goal's first pair or coin, else the
    coin of a named protocol) on `exchange` / `timeframe` (else the goal's); `Ask` when there
    is no coin, no such series, or several."""
    stored = catalog.bases()
    listing = (
        ", ".join(stored)
        if stored
        else "none yet (import some with omc data import FILE or omc backfill, or pass --data FILE)"
    )
    if symbol:
        wanted = symbol.upper()
        ignored = [c for c in terms.pairs + terms.coins if c.split("/")[0] != wanted.split("/")[0]]
        if ignored:
            notes.append(f"--symbol {wanted} is used; the goal also names {', '.join(ignored)}")
    elif terms.pairs:
        wanted = terms.pairs[0]
    elif terms.coins:
        wanted = terms.coins[0]
    elif terms.protocol and _protocol_coin(catalog, terms.protocol):
        wanted = _protocol_coin(catalog, terms.protocol) or ""
        notes.append(f"the coin is {wanted}, the one {terms.protocol} concerns with stored candles")
    else:
        raise Ask(
            f"Which coin should the study be on? Coins with stored candles: {listing}. "
            "Answer with a coin or pair (e.g. 'ETH' or 'ETH/USDT'), or pass --symbol or --data."
        )
    others = [c for c in terms.coins if c != wanted.split("/")[0]]
    if not symbol and others:
        notes.append(
            f"the goal names several coins; the study is on the first, {wanted} "
            f"(not {', '.join(others)})"
        )
    pair = "/" in wanted
    coin = wanted.split("/")[0]
    ex = exchange or terms.exchange
    tf = timeframe or terms.timeframe
    found = catalog.matching(
        symbol=wanted if pair else None, coin=None if pair else coin, exchange=ex, timeframe=tf
    )
    if not found:
        relaxed = catalog.matching(coin=coin)
        wanted_text = " ".join(x for x in (wanted, ex and f"on {ex}", tf and f"at {tf}") if x)
        if not relaxed:
            raise Ask(
                f"There are no stored candles for {coin}. Coins with stored candles: {listing}. "
                "Which coin should the study be on?"
            )
        raise Ask(
            f"There are no stored candles for {wanted_text}. Stored {coin} series: "
            f"{_options(relaxed)}. Which one? Answer e.g. "
            f"'{relaxed[0].exchange} {relaxed[0].symbol} {relaxed[0].timeframe}'."
        )
    if len(found) > 1:
        raise Ask(
            f"Several stored series match {wanted}: {_options(found)}. Which exchange and "
            f"timeframe? Answer e.g. '{found[0].exchange} {found[0].timeframe}'."
        )
    series = found[0]
    given = [x for x in (ex and f"on {ex}", tf and f"at {tf}") if x]
    scope = f"{coin} series {' '.join(given)}" if given else f"{coin} series"
    if not (ex and tf):
        notes.append(f"data: {series.describe()} — the only stored {scope}")
    else:
        notes.append(f"data: {series.describe()}")
    return series, series.symbol


def horizon_bars(
    terms: GoalTerms, horizon: int | None, series: Series, catalog: Catalog, notes: list[str]
) -> int:
    """The horizon in bars of `series`: `horizon`, else the goal's bars or duration, else 1."""
    tf = series.timeframe
    bar_s = timeframe_seconds(tf)
    if horizon is not None:
        if terms.horizon_text:
            notes.append(f"--horizon {horizon} is used; the goal's '{terms.horizon_text}' is not")
        return horizon
    if terms.horizon_bars is not None:
        bars = terms.horizon_bars
        notes.append(f"horizon: '{terms.horizon_text}' = {bars_text(bars, tf)}")
    elif terms.horizon_seconds is not None:
        seconds = terms.horizon_seconds
        if seconds < bar_s:
            finer = [
                s
                for s in catalog.matching(coin=series.base)
                if timeframe_seconds(s.timeframe) <= seconds and s.exchange == series.exchange
            ]
            hint = f" or a series with shorter bars ({_options(finer)})" if finer else ""
            raise Ask(
                f"The goal's horizon '{terms.horizon_text}' is shorter than one bar of the "
                f"{tf} series {series.symbol}: a study cannot predict inside a bar. Answer with a "
                f"horizon in bars (e.g. '1 bar' = {tf}){hint}."
            )
        exact = seconds / bar_s
        bars = math.floor(exact + 0.5)
        if bars != exact:
            notes.append(
                f"horizon: '{terms.horizon_text}' is {exact:g} bars of {tf}; rounded to {bars}"
            )
        else:
            notes.append(f"horizon: '{terms.horizon_text}' = {bars_text(bars, tf)}")
    else:
        bars = 1
        notes.append(f"horizon: the next bar ({tf}), as the goal names none")
    if bars > MAX_HORIZON:
        raise Ask(
            f"The horizon '{terms.horizon_text}' is {bars:,} bars of {tf}, more than "
            f"{MAX_HORIZON:,}: answer with a shorter horizon or a longer timeframe."
        )
    return bars
