"""The offline planner: a goal in words becomes a `ResearchPlan`, or ONE clarifying question.

    plan_goal(goal, catalog, *, symbol=None, exchange=None, timeframe=None, horizon=None,
              trials=None, as_of=None, data_file=None, answer=None) -> PlanResult

Deterministic and offline: the same goal, catalog and options give the same plan. The goal's
words are read by `omc.lab.goal.read_goal`; the series and horizon are resolved against the
`Catalog` (`omc.lab.catalog.catalog_for` / `catalog_from_db` / `catalog_from_file`) by
`omc.lab.resolve`. Explicit options (the CLI's
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

from datetime import datetime
from typing import Any, get_args

from pydantic import ValidationError

from omc.core.time import ensure_utc, timeframe_seconds
from omc.lab.catalog import Catalog
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
from omc.lab.resolve import MAX_HORIZON, Ask, bars_text, db_series, file_series, horizon_bars

FAMILY_ORDER: tuple[FeatureFamily, ...] = get_args(FeatureFamily)
LEDGER_ORDER: tuple[Ledger, ...] = get_args(Ledger)
DEFAULT_TRIALS = 20
MAX_TRIALS = 10_000


class PlannerError(ValueError):
    """An explicit option that cannot be used (one clear line for the CLI)."""


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


def _protocol(
    terms: GoalTerms,
    coin: str,
    families: list[FeatureFamily],
    catalog: Catalog,
    notes: list[str],
) -> str | None:
    """The DeFiLlama protocol of the Glass features: the one the goal names, else the one
    configured for the coin (so the saved plan does not depend on the settings later)."""
    glass = ", ".join(f for f in families if FAMILY_LEDGER[f] == "glass")
    if not glass:
        return None
    if terms.protocol:
        notes.append(
            f"the Glass features ({glass}) are DeFiLlama's {terms.protocol}, named in the goal"
        )
        return terms.protocol
    for protocol, coins in catalog.protocols.items():
        if coin in coins:
            notes.append(
                f"the Glass features ({glass}) are DeFiLlama's {protocol}, configured for {coin}"
            )
            return protocol
    notes.append(
        f"no DeFiLlama protocol is configured for {coin} (defillama_protocol_coins): name one in "
        f"the goal, or the {glass} feature(s) will be empty"
    )
    return None


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
        series, sym = file_series(catalog, terms, symbol, timeframe, notes)
        data_file = data_file or series.data_file
        plan_exchange = exchange or "file"
    else:
        series, sym = db_series(catalog, terms, symbol, exchange, timeframe, notes)
        plan_exchange = series.exchange
    bars = horizon_bars(terms, horizon, series, catalog, notes)
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
    protocol = _protocol(terms, sym.split("/")[0].upper(), families, catalog, notes)
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
    given = {
        "scheme": terms.scheme,
        "folds": terms.folds,
        "fee_bps": terms.fee_bps,
        "holdout_fraction": terms.holdout_fraction,
        "embargo_bars": terms.embargo_bars,
    }
    usable: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        try:
            Evaluation.model_validate({key: value})
        except ValidationError:
            notes.append(f"the goal's {key.replace('_', ' ')} {value:g} is out of range: ignored")
            continue
        usable[key] = value
    evaluation = Evaluation.model_validate(usable)
    notes.append(
        f"evaluation: {evaluation.scheme} walk-forward, {evaluation.folds} folds, purge and "
        f"embargo of {bars_text(evaluation.embargo(bars), series.timeframe)}, the last "
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
        protocol=protocol,
        ledgers=ledgers,
        features=families,
        models=models,
        evaluation=evaluation,
        trials=budget,
        as_of=ensure_utc(as_of) if as_of is not None else None,
        seed=terms.seed or 0,
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
    goal's. Several replies (to successive questions) are joined with ";", oldest first:
    "ETH; binance 1h". Raises `PlannerError` only for invalid explicit options.
    """
    _validate(timeframe, horizon, trials, as_of)
    options: dict[str, Any] = dict(
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        horizon=horizon,
        trials=trials,
        as_of=as_of,
        data_file=data_file,
    )
    known: dict[str, Any] = dict(
        exchanges={*EXCHANGES, *(s.exchange for s in catalog.series)},
        coins={*catalog.bases(), *catalog.coins},
        protocols=list(catalog.protocols),
    )
    terms = read_goal(goal, **known)
    notes: list[str] = []
    asked: str | None = None
    reply = ""
    for reply in (part.strip() for part in (answer or "").split(";")):
        if not reply:
            continue
        asked = _attempt(goal, catalog, terms, options).question
        if asked:
            notes.append(f"asked: {asked} — answered: {reply!r}")
        else:
            notes.append(f"the answer {reply!r} is applied to the goal")
        terms = terms.overlay(read_goal(reply, answer=True, **known))
    result = _attempt(goal, catalog, terms, options, notes)
    if result.question is not None and result.question == asked:
        return PlanResult(question=f"{asked} (the answer {reply!r} did not settle it)")
    return result


def _attempt(
    goal: str,
    catalog: Catalog,
    terms: GoalTerms,
    options: dict[str, Any],
    notes: list[str] | None = None,
) -> PlanResult:
    try:
        return PlanResult(plan=_plan(goal, catalog, terms, notes=list(notes or []), **options))
    except Ask as ask:
        return PlanResult(question=ask.question)


__all__ = ["PlannerError", "plan_goal"]
