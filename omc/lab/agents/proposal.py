"""The LLM's plan proposal: its schema (the `propose_plan` tool) and the code that validates
it against the catalog and the plan's limits, repairing or rejecting it visibly.

`review(args, ctx)` returns a `Review`: the `ResearchPlan` built from the proposal (or None),
the `errors` sent back to the LLM when it is rejected, and the `repairs` made to accept it.
Rejected: arguments that are not the schema, a series the catalog does not hold (or an
ambiguous one), an evaluation the plan model refuses, a plan whose evaluation windows would
start inside the LLM's training window even with the base plan's evaluation. Repaired (each
one a line the caller emits and writes into the plan's assumptions): the user's explicit
options (--symbol, --timeframe, --exchange, --horizon, --trials) beat the proposal; more
trials than the plan's trial budget are cut to it; a search range outside the model's
bounds is clipped (an unknown parameter or model dropped); the ledgers follow the features;
an evaluation that would open the evaluation windows early is put back to the base plan's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omc.lab.agents.window import TrainingWindow, first_test_time, plan_window_ok
from omc.lab.catalog import Catalog, Series
from omc.lab.plan import (
    FAMILY_LEDGER,
    SEARCH_BOUNDS,
    Evaluation,
    FeatureFamily,
    Ledger,
    ModelName,
    ResearchPlan,
    TargetKind,
)
from omc.lab.resolve import MAX_HORIZON

LEDGER_ORDER: tuple[Ledger, ...] = get_args(Ledger)
FAMILY_ORDER: tuple[FeatureFamily, ...] = get_args(FeatureFamily)
OPTION_KEYS = ("symbol", "exchange", "timeframe", "horizon_bars", "trials")


class Proposal(BaseModel):
    """A study the LLM proposes; code decides whether and how it runs."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    symbol: str = Field(description="The pair to study, one of the catalog's, e.g. BTC/USDT.")
    exchange: str | None = Field(None, description="The series' exchange (from the catalog).")
    timeframe: str | None = Field(None, description="The series' bar length, e.g. 1h.")
    target: TargetKind = Field("direction", description="What is predicted.")
    horizon_bars: int = Field(1, ge=1, le=MAX_HORIZON, description="Bars ahead.")
    threshold: float = Field(0.0, description="direction: 'up' means a log return above this.")
    features: list[FeatureFamily] = Field(min_length=1, description="Feature families.")
    models: list[ModelName] = Field(min_length=1, description="Model families to search.")
    search_space: dict[str, dict[str, list[float]]] = Field(
        default_factory=dict,
        description="Optional: model -> parameter -> [low, high], narrowing the model's "
        "bounded space (see the limits).",
    )
    trials: int | None = Field(None, ge=1, description="Search trials (at most the budget).")
    folds: int | None = Field(None, ge=2, le=50, description="Walk-forward folds.")
    scheme: Literal["expanding", "rolling"] | None = None
    holdout_fraction: float | None = Field(None, gt=0.0, lt=0.9)
    rationale: str = Field("", max_length=2000, description="Why this study, in brief.")


def proposal_schema() -> dict[str, Any]:
    """The `propose_plan` tool in OpenAI's function format."""
    params = Proposal.model_json_schema()
    params.pop("title", None)
    params.pop("description", None)
    for prop in params.get("properties", {}).values():
        prop.pop("title", None)
    return {
        "type": "function",
        "function": {
            "name": "propose_plan",
            "description": "Propose the study to run (the final answer). Code validates it "
            "against the catalog and the limits, and replies with what it rejected.",
            "parameters": params,
        },
    }


def ask_schema() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "ask_user",
            "description": "Ask the user ONE clarifying question instead of guessing (e.g. "
            "which coin, when the goal names none and several series exist).",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
            },
        },
    }


@dataclass
class Context:
    """What a proposal is checked against."""

    goal: str
    catalog: Catalog
    base: ResearchPlan  # the deterministic planner's plan (its limits and evaluation)
    window: TrainingWindow
    options: dict[str, Any] = field(default_factory=dict)  # the user's explicit options
    llm: str = "the LLM"


@dataclass
class Review:
    plan: ResearchPlan | None = None
    errors: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.plan is not None, "errors": self.errors, "repairs": self.repairs}


def _schema_errors(exc: ValidationError) -> list[str]:
    out = []
    for item in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        out.append(f"{where}: {str(item['msg']).removeprefix('Value error, ')}")
    return out


def _series(p: Proposal, ctx: Context, review: Review) -> Series | None:
    catalog, base = ctx.catalog, ctx.base
    if catalog.data_file is not None:  # the user's file is the data
        series = catalog.series[0]
        if p.symbol.upper() != base.symbols[0].upper():
            review.repairs.append(
                f"symbol {p.symbol} replaced by {base.symbols[0]}: the study's data is the "
                f"file {series.data_file}"
            )
        return series
    found = catalog.matching(symbol=p.symbol, exchange=p.exchange, timeframe=p.timeframe)
    if len(found) > 1:
        same = [s for s in found if (s.exchange, s.timeframe) == (base.exchange, base.timeframe)]
        if len(same) == 1:
            review.repairs.append(
                f"{p.symbol}: several series match; the planner's {same[0].describe()} is used"
            )
            return same[0]
        listed = "; ".join(s.describe() for s in found)
        review.errors.append(
            f"{p.symbol}: several series match ({listed}): name exchange and timeframe"
        )
        return None
    if not found:
        listed = "; ".join(s.describe() for s in catalog.series) or "none"
        review.errors.append(
            f"no stored series {p.symbol} {p.exchange or ''} {p.timeframe or ''}".rstrip()
            + f": the catalog holds {listed}"
        )
        return None
    return found[0]


def _space(p: Proposal, models: list[ModelName], review: Review) -> dict[str, Any]:
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for model, space in p.search_space.items():
        if model not in models:
            review.repairs.append(f"search_space.{model} dropped: not one of the plan's models")
            continue
        for name, pair in space.items():
            bound = SEARCH_BOUNDS[model].get(name)
            if bound is None or len(pair) != 2:
                review.repairs.append(
                    f"search_space.{model}.{name} dropped: unknown parameter "
                    f"(known: {', '.join(SEARCH_BOUNDS[model])})"
                )
                continue
            low, high = sorted(float(v) for v in pair)
            lo, hi = max(low, bound[1]), min(high, bound[2])
            if lo > hi:
                review.repairs.append(
                    f"search_space.{model}.{name} [{low:g}, {high:g}] dropped: outside "
                    f"[{bound[1]:g}, {bound[2]:g}]"
                )
                continue
            if (lo, hi) != (low, high):
                review.repairs.append(
                    f"search_space.{model}.{name} [{low:g}, {high:g}] clipped to "
                    f"[{lo:g}, {hi:g}] (the model's bounds)"
                )
            out.setdefault(model, {})[name] = (lo, hi)
    return out


def review(args: dict[str, Any] | str | None, ctx: Context) -> Review:
    """Validate one `propose_plan` call (module docstring)."""
    result = Review()
    try:
        raw = json.loads(args) if isinstance(args, str) else (args or {})
        p = Proposal.model_validate(raw)
    except json.JSONDecodeError as exc:
        result.errors.append(f"arguments are not valid JSON: {exc.msg}")
        return result
    except ValidationError as exc:
        result.errors.extend(_schema_errors(exc))
        return result
    given = {k: v for k, v in ctx.options.items() if k in OPTION_KEYS and v is not None}
    updates: dict[str, Any] = {}
    for key, value in given.items():
        if getattr(p, key) != value:
            result.repairs.append(f"{key} {getattr(p, key)} replaced by the user's {value}")
            updates[key] = value
    p = p.model_copy(update=updates)
    series = _series(p, ctx, result)
    if series is None:
        return result
    budget = ctx.base.trials
    trials = p.trials or budget
    if trials > budget:
        result.repairs.append(f"trials {trials} cut to the plan's trial budget {budget}")
        trials = budget
    features = [f for f in FAMILY_ORDER if f in p.features]
    ledgers = [led for led in LEDGER_ORDER if any(FAMILY_LEDGER[f] == led for f in features)]
    models = list(dict.fromkeys(p.models))
    evaluation = ctx.base.evaluation.model_dump()
    for key in ("folds", "scheme", "holdout_fraction"):
        if getattr(p, key) is not None:
            evaluation[key] = getattr(p, key)
    body = ctx.base.model_dump()
    body.update(
        goal=ctx.goal,
        target={"kind": p.target, "horizon_bars": p.horizon_bars, "threshold": p.threshold},
        exchange=series.exchange if ctx.catalog.data_file is None else ctx.base.exchange,
        symbols=[series.symbol or ctx.base.symbols[0]],
        timeframe=series.timeframe,
        features=features,
        ledgers=ledgers,
        models=models,
        search_space=_space(p, models, result),
        evaluation=evaluation,
        trials=trials,
        assumptions=[],
    )
    try:
        Evaluation.model_validate(evaluation)
        plan = ResearchPlan.model_validate(body)
    except ValidationError as exc:
        result.errors.extend(_schema_errors(exc))
        return result
    if not plan_window_ok(plan, series, ctx.window):
        plan = plan.model_copy(update={"evaluation": ctx.base.evaluation})
        result.repairs.append(
            "the proposed evaluation would start testing inside the training window the LLM "
            "read: the planner's evaluation is used"
        )
        if not plan_window_ok(plan, series, ctx.window):
            result.errors.append(
                f"horizon {p.horizon_bars} bars moves the evaluation windows into the data you "
                "read: propose a shorter horizon"
            )
            return result
    if first_test_time(series, plan) is None and series.first is not None:
        result.errors.append(
            f"{series.describe()} is too short for {plan.evaluation.folds} folds with this "
            "horizon and holdout: propose fewer folds or a shorter horizon"
        )
        return result
    notes = [
        f"planned by {ctx.llm} (tool calling over the Lab's data tools); validated by code",
        *(f"repaired: {r}" for r in result.repairs),
    ]
    if p.rationale:
        notes.append(f"the LLM's rationale: {' '.join(p.rationale.split())[:500]}")
    result.plan = plan.model_copy(update={"assumptions": notes})
    return result


__all__ = ["Context", "Proposal", "Review", "ask_schema", "proposal_schema", "review"]
