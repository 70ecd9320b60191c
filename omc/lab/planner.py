"""The offline planner: a goal in words becomes a `ResearchPlan`, or ONE clarifying question.

    plan_goal(goal, catalog, *, symbol=None, exchange=None, timeframe=None, horizon=None,
              trials=None, as_of=None, data_file=None, answer=None) -> PlanResult

Deterministic and offline: the same goal, catalog and options give the same plan. The goal's
words are read by `omc.lab.goal.read_goal`; the coin is resolved against the `Catalog`
(`omc.lab.catalog.catalog_from_db` / `catalog_from_file`). Explicit options (the CLI's
`--symbol --exchange --timeframe --horizon --trials --as-of --data`) beat the text; an
`answer` (the reply to the previous question, e.g. "ETH" or "binance 1h") beats the goal's
words for what it states. Every default filled and every interpretation made is a
human-readable line in `plan.assumptions`.

A question instead of a plan (`PlanResult.question`) when:
* no coin is named and there is neither `symbol` nor a data file;
* the coin (or symbol / exchange / timeframe) has no stored candles — the question lists what
  exists;
* several stored series match (which exchange / timeframe?);
* a horizon given as a duration is shorter than one bar ("30 minutes" on 1h bars): the study
  cannot predict inside a bar, so it asks for a horizon in bars or a shorter timeframe.
  A duration longer than a bar but not a whole number of bars is rounded to the nearest bar
  count, and that is an assumption.

Options that are invalid in themselves (an unknown timeframe, `horizon < 1`, `trials` out of
1..10,000, a naive `as_of`) raise `PlannerError` (a ValueError) with one clear line.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import get_args

from omc.core.time import ensure_utc, timeframe_seconds
from omc.lab.catalog import Catalog, Series
from omc.lab.goal import EXCHANGES, GoalTerms, read_goal
from omc.lab.plan import (
    DEFAULT_FEATURES,
    DEFAULT_MODELS,
    FAMILY_LEDGER,
    Evaluation,
    FeatureFamily,
    Ledger,
    PlanResult,
    ResearchPlan,
    Target,
)

FAMILY_ORDER: tuple[FeatureFamily, ...] = get_args(FeatureFamily)
LEDGER_ORDER: tuple[Ledger, ...] = get_args(Ledger)
DEFAULT_TRIALS = 20
MAX_TRIALS = 10_000
MAX_HORIZON = 10_000


class PlannerError(ValueError):
    """An explicit option that cannot be used (one clear line for the CLI)."""


class _Ask(Exception):
    """Control flow: the planner stops with one question."""

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.question = question


def _bars_text(n: int, timeframe: str) -> str:
    return f"{n} bar{'s' if n != 1 else ''} of {timeframe}"


def _options(series: list[Series]) -> str:
    return "; ".join(s.describe() for s in series)


def _validate(
    timeframe: str | None, horizon: int | None, trials: int | None, as_of: datetime | None
) -> None:
    if timeframe is not None:
        try:
            timeframe_seconds(timeframe)
        except ValueError as exc:
            raise PlannerError(str(exc)) from exc
    if horizon is not None and not 1 <= horizon <= MAX_HORIZON:
        raise PlannerError(f"--horizon must be 1..{MAX_HORIZON} bars, not {horizon}")
    if trials is not None and not 1 <= trials <= MAX_TRIALS:
        raise PlannerError(f"--trials must be 1..{MAX_TRIALS}, not {trials}")
    if as_of is not None and as_of.tzinfo is None:
        raise PlannerError("--as-of must carry a time zone (e.g. 2024-06-01T00:00Z)")


def _file_series(
    catalog: Catalog, terms: GoalTerms, symbol: str | None, timeframe: str | None, notes: list[str]
) -> tuple[Series, str]:
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


def _db_series(
    catalog: Catalog,
    terms: GoalTerms,
    symbol: str | None,
    exchange: str | None,
    timeframe: str | None,
    notes: list[str],
) -> tuple[Series, str]:
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
    else:
        raise _Ask(
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
            raise _Ask(
                f"There are no stored candles for {coin}. Coins with stored candles: {listing}. "
                "Which coin should the study be on?"
            )
        raise _Ask(
            f"There are no stored candles for {wanted_text}. Stored {coin} series: "
            f"{_options(relaxed)}. Which one? Answer e.g. "
            f"'{relaxed[0].exchange} {relaxed[0].symbol} {relaxed[0].timeframe}'."
        )
    if len(found) > 1:
        raise _Ask(
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


def _horizon(
    terms: GoalTerms, horizon: int | None, series: Series, catalog: Catalog, notes: list[str]
) -> int:
    tf = series.timeframe
    bar_s = timeframe_seconds(tf)
    if horizon is not None:
        if terms.horizon_text:
            notes.append(f"--horizon {horizon} is used; the goal's '{terms.horizon_text}' is not")
        return horizon
    if terms.horizon_bars is not None:
        bars = terms.horizon_bars
        notes.append(f"horizon: '{terms.horizon_text}' = {_bars_text(bars, tf)}")
    elif terms.horizon_seconds is not None:
        seconds = terms.horizon_seconds
        if seconds < bar_s:
            finer = [
                s
                for s in catalog.matching(coin=series.base)
                if timeframe_seconds(s.timeframe) <= seconds and s.exchange == series.exchange
            ]
            hint = f" or a series with shorter bars ({_options(finer)})" if finer else ""
            raise _Ask(
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
            notes.append(f"horizon: '{terms.horizon_text}' = {_bars_text(bars, tf)}")
    else:
        bars = 1
        notes.append(f"horizon: the next bar ({tf}), as the goal names none")
    if bars > MAX_HORIZON:
        raise _Ask(
            f"The horizon '{terms.horizon_text}' is {bars:,} bars of {tf}, more than "
            f"{MAX_HORIZON:,}: answer with a shorter horizon or a longer timeframe."
        )
    return bars


def _features(
    terms: GoalTerms, coin: str, catalog: Catalog, notes: list[str]
) -> tuple[list[FeatureFamily], list[Ledger]]:
    named = list(terms.features)
    if not named:
        families = list(DEFAULT_FEATURES)
        notes.append(
            "features: price and volume only (returns, volatility, RSI, SMA ratio, volume "
            "z-score), as the goal names no data"
        )
    elif not any(FAMILY_LEDGER[f] == "exchange" for f in named):
        families = DEFAULT_FEATURES + named
        notes.append(
            f"price and volume features (returns, volatility, RSI, SMA ratio, volume z-score) "
            f"are added to {', '.join(named)}"
        )
    else:
        families = named
    families = [f for f in FAMILY_ORDER if f in families]
    ledgers = [led for led in LEDGER_ORDER if any(FAMILY_LEDGER[f] == led for f in families)]
    known = catalog.ledgers_of(coin)
    for ledger in ledgers:
        if ledger != "exchange" and ledger not in known:
            fams = ", ".join(f for f in families if FAMILY_LEDGER[f] == ledger)
            notes.append(
                f"no {ledger}-ledger data is stored for {coin}: the {fams} feature(s) will be "
                "empty, and the data checks will say so"
            )
    return families, ledgers


def _plan(
    goal: str,
    catalog: Catalog,
    terms: GoalTerms,
    *,
    symbol: str | None,
    exchange: str | None,
    timeframe: str | None,
    horizon: int | None,
    trials: int | None,
    as_of: datetime | None,
    data_file: str | None,
    notes: list[str],
) -> ResearchPlan:
    if data_file is not None or catalog.data_file is not None:
        if not catalog.series:
            raise PlannerError("the catalog of the data file is empty")
        series, sym = _file_series(catalog, terms, symbol, timeframe, notes)
        data_file = data_file or series.data_file
        plan_exchange = exchange or "file"
    else:
        series, sym = _db_series(catalog, terms, symbol, exchange, timeframe, notes)
        plan_exchange = series.exchange
    bars = _horizon(terms, horizon, series, catalog, notes)
    kind = terms.target or "direction"
    threshold = 0.0
    if terms.target is None:
        notes.append("target: the direction (up/down) of the close, as the goal names no target")
    else:
        notes.append(f"target: {kind.replace('_', ' ')} (from '{terms.target_text}')")
    if terms.threshold is not None:
        if kind == "volatility":
            notes.append(f"'{terms.threshold_text}' ignored: a volatility target has no threshold")
        else:
            threshold = terms.threshold
            notes.append(f"up means a log return above {threshold:.5f} ('{terms.threshold_text}')")
    families, ledgers = _features(terms, sym.split("/")[0].upper(), catalog, notes)
    notes.extend(dict.fromkeys(terms.notes))
    models = [m for m in DEFAULT_MODELS if m in terms.models] or list(DEFAULT_MODELS)
    if not terms.models:
        notes.append("models: logistic regression, random forest and LightGBM, as none is named")
    if trials is not None:
        budget = trials
        if terms.trials is not None and terms.trials != trials:
            notes.append(f"--trials {trials} is used; the goal says {terms.trials}")
    elif terms.trials is not None:
        budget = min(max(terms.trials, 1), MAX_TRIALS)
        if budget != terms.trials:
            notes.append(f"the goal's {terms.trials} trials capped at {budget}")
    else:
        budget = DEFAULT_TRIALS
        notes.append(f"trial budget: {DEFAULT_TRIALS} (the default)")
    given = {"scheme": terms.scheme, "folds": terms.folds, "fee_bps": terms.fee_bps}
    evaluation = Evaluation.model_validate({k: v for k, v in given.items() if v is not None})
    notes.append(
        f"evaluation: {evaluation.scheme} walk-forward, {evaluation.folds} folds, purge and "
        f"embargo of {_bars_text(evaluation.embargo(bars), series.timeframe)}, the last "
        f"{evaluation.holdout_fraction:.0%} a sealed holdout, fees {evaluation.fee_bps:g} bps"
    )
    if as_of is None:
        notes.append("point in time: the data stored when the session starts")
    return ResearchPlan(
        goal=goal,
        target=Target(kind=kind, horizon_bars=bars, threshold=threshold),
        exchange=plan_exchange,
        symbols=[sym],
        timeframe=series.timeframe,
        data_file=data_file,
        ledgers=ledgers,
        features=families,
        models=models,
        evaluation=evaluation,
        trials=budget,
        as_of=ensure_utc(as_of) if as_of is not None else None,
        assumptions=list(dict.fromkeys(notes)),
    )


def plan_goal(
    goal: str,
    catalog: Catalog,
    *,
    symbol: str | None = None,
    exchange: str | None = None,
    timeframe: str | None = None,
    horizon: int | None = None,
    trials: int | None = None,
    as_of: datetime | None = None,
    data_file: str | None = None,
    answer: str | None = None,
) -> PlanResult:
    """Plan `goal` against `catalog`: `PlanResult(plan=...)` or `PlanResult(question=...)`.

    `catalog`: from `catalog_from_db(engine, as_of=...)`, or `catalog_from_file(path)` when
    the study is on a candles file (then pass `data_file=str(path)` too, or leave it None: the
    file catalog carries it). `symbol`/`exchange`/`timeframe`/`horizon` (bars)/`trials`/
    `as_of`: the explicit options, which beat the goal's words. `answer`: the user's reply to
    the question a previous call returned; it is read like the goal and its terms replace the
    goal's. Raises `PlannerError` only for invalid explicit options.
    """
    _validate(timeframe, horizon, trials, as_of)
    options = dict(
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        horizon=horizon,
        trials=trials,
        as_of=as_of,
        data_file=data_file,
    )
    exchanges = {*EXCHANGES, *(s.exchange for s in catalog.series)}
    coins = {*catalog.bases(), *catalog.coins}
    terms = read_goal(goal, exchanges=exchanges, coins=coins)
    notes: list[str] = []
    asked = None
    if answer is not None and answer.strip():
        before = plan_goal(goal, catalog, **options)  # type: ignore[arg-type]
        reply = read_goal(answer, answer=True, exchanges=exchanges, coins=coins)
        asked = before.question
        if asked:
            notes.append(f"asked: {before.question} — answered: {answer.strip()!r}")
        else:
            notes.append(f"the answer {answer.strip()!r} is applied to the goal")
        terms = terms.overlay(reply)
    try:
        plan = _plan(goal, catalog, terms, notes=notes, **options)  # type: ignore[arg-type]
    except _Ask as ask:
        question = ask.question
        if asked == question:
            question += f" (the answer {answer.strip()!r} did not settle it)"  # type: ignore[union-attr]
        return PlanResult(question=question)
    return PlanResult(plan=plan)


__all__ = ["PlannerError", "plan_goal"]
