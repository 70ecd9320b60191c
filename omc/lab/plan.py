"""The research plan: the typed, saved description of one Lab study.

A plan says what is predicted (target and horizon), on which series (symbols, exchange,
timeframe, or a candle file), from which ledgers and feature families, with which candidate
models, how it is evaluated (walk-forward scheme, purge/embargo, sealed holdout, fees), how
many trials the search may spend, the verdict thresholds, and every assumption the planner
made. The offline planner (`omc.lab.planner`) builds one from a goal in words; a user may
also pass one as JSON (`omc lab run --plan plan.json`). Every session stores its plan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TargetKind = Literal["direction", "forward_return", "volatility"]
Ledger = Literal["exchange", "human", "glass", "catalyst"]
FeatureFamily = Literal[
    "returns",  # exchange: log returns at several lags
    "volatility",  # exchange: rolling std of returns
    "rsi",  # exchange
    "sma_ratio",  # exchange: close / SMA(n) - 1
    "volume_z",  # exchange: volume z-score
    "sentiment",  # human: hourly sentiment mean, count and change
    "news_volume",  # human: news items per coin per hour
    "tvl",  # glass: TVL change
    "fees",  # glass: protocol fees change
    "catalyst",  # catalyst: time since last listing / delisting / filing, decaying weight
]
ModelName = Literal["logistic", "random_forest", "lightgbm"]

FAMILY_LEDGER: dict[str, Ledger] = {
    "returns": "exchange",
    "volatility": "exchange",
    "rsi": "exchange",
    "sma_ratio": "exchange",
    "volume_z": "exchange",
    "sentiment": "human",
    "news_volume": "human",
    "tvl": "glass",
    "fees": "glass",
    "catalyst": "catalyst",
}
DEFAULT_LEDGERS: list[Ledger] = ["exchange"]
DEFAULT_FEATURES: list[FeatureFamily] = ["returns", "volatility", "rsi", "sma_ratio", "volume_z"]
DEFAULT_MODELS: list[ModelName] = ["logistic", "random_forest", "lightgbm"]

# Every model's hyper-parameter space: name -> (kind, low, high, log scale, integer step).
# The search samples these (`omc.lab.training.models.suggest`); a plan's `search_space` may
# only narrow them.
SEARCH_BOUNDS: dict[str, dict[str, tuple[str, float, float, bool, int | None]]] = {
    "logistic": {"C": ("float", 1e-3, 10.0, True, None)},
    "random_forest": {
        "n_estimators": ("int", 20, 40, False, 10),
        "max_depth": ("int", 3, 6, False, None),
        "min_samples_leaf": ("int", 20, 500, True, None),
        "max_features": ("float", 0.2, 0.6, False, None),
    },
    "lightgbm": {
        "n_estimators": ("int", 50, 200, False, 50),
        "learning_rate": ("float", 0.01, 0.2, True, None),
        "num_leaves": ("int", 7, 31, False, None),
        "min_child_samples": ("int", 50, 1000, True, None),
        "subsample": ("float", 0.5, 1.0, False, None),
        "colsample_bytree": ("float", 0.5, 1.0, False, None),
        "reg_lambda": ("float", 1e-3, 10.0, True, None),
    },
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Model):
    """What is predicted `horizon_bars` ahead. `direction`: 1 when the forward log return
    exceeds `threshold`; `forward_return`: the sign of the forward return (a classifier on
    up/down, reported with the return); `volatility`: 1 when the forward realised
    volatility exceeds its trailing median (known at the bar)."""

    kind: TargetKind = "direction"
    horizon_bars: int = Field(1, ge=1, le=10_000)
    threshold: float = 0.0


class Evaluation(_Model):
    """Walk-forward with purging and an embargo (>= the horizon), then a sealed holdout."""

    scheme: Literal["expanding", "rolling"] = "expanding"
    folds: int = Field(5, ge=2, le=50)
    embargo_bars: int | None = Field(None, ge=0)  # None = the horizon
    holdout_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    fee_bps: float = Field(10.0, ge=0.0)  # CoinSpot's taker fee is 0.1 %
    min_auc_lift: float = 0.02  # verdict `edge` needs OOS AUC >= best baseline AUC + this
    min_deflated_sharpe_probability: float = Field(0.95, ge=0.0, le=1.0)

    def embargo(self, horizon: int) -> int:
        return max(self.embargo_bars or 0, horizon)


class ResearchPlan(_Model):
    goal: str
    target: Target = Target()
    exchange: str = "binance"
    symbols: list[str] = Field(default_factory=list, min_length=1)
    timeframe: str = "5m"
    data_file: str | None = None  # a candles CSV instead of the Exchange ledger
    protocol: str | None = None  # DeFiLlama slug for tvl/fees; None = the coin's mapped one
    ledgers: list[Ledger] = Field(default_factory=DEFAULT_LEDGERS.copy)
    features: list[FeatureFamily] = Field(default_factory=DEFAULT_FEATURES.copy)
    models: list[ModelName] = Field(default_factory=DEFAULT_MODELS.copy)
    evaluation: Evaluation = Evaluation()
    trials: int = Field(20, ge=1, le=10_000)
    # model -> parameter -> [low, high], inside SEARCH_BOUNDS; empty = the full spaces
    search_space: dict[ModelName, dict[str, tuple[float, float]]] = Field(default_factory=dict)
    as_of: datetime | None = None  # point-in-time cut; None = when the session starts
    seed: int = 0
    assumptions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ResearchPlan:
        missing = sorted({FAMILY_LEDGER[f] for f in self.features} - set(self.ledgers))
        if missing:
            raise ValueError(f"features need ledgers not in the plan: {', '.join(missing)}")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC)")
        for model, space in self.search_space.items():
            if model not in self.models:
                raise ValueError(f"search_space.{model}: not one of the plan's models")
            for name, (low, high) in space.items():
                bound = SEARCH_BOUNDS[model].get(name)
                if bound is None:
                    known = ", ".join(SEARCH_BOUNDS[model])
                    raise ValueError(f"search_space.{model}.{name}: unknown (known: {known})")
                if not bound[1] <= low <= high <= bound[2]:
                    raise ValueError(
                        f"search_space.{model}.{name}: [{low:g}, {high:g}] is not inside "
                        f"[{bound[1]:g}, {bound[2]:g}] with low <= high"
                    )
        return self


class PlanResult(_Model):
    """What the planner returns: a plan, or one clarifying question instead of a guess."""

    plan: ResearchPlan | None = None
    question: str | None = None
