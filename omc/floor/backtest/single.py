"""One backtest from its description: the single code path of `omc backtest` and of the
API's backtest jobs, so both give the same numbers on the same candles.

`BacktestSpec` holds what a user chooses (strategy and parameters, cash, fees, slippage,
volume share, the Guard); `check(spec)` builds the strategy once (ValueError, one line, for a
bad name or parameter); `run(spec, bars)` runs it with the fee model, slippage model and,
when asked, the paper Guard and instrument rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omc.core.config import Settings
from omc.floor.backtest.engine import BacktestResult, run_backtest
from omc.floor.data import Bars
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategies import make_strategy
from omc.floor.strategy import Strategy


@dataclass(frozen=True)
class BacktestSpec:
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    cash: Decimal = Decimal(10000)
    fee_bps: Decimal | None = None  # None: the configured (CoinSpot) maker/taker fees
    slippage_bps: Decimal = Decimal(0)
    volume_share: Decimal | None = None
    guard: bool = False

    def fees(self, settings: Settings | None = None) -> FeeModel:
        if self.fee_bps is not None:
            return FeeModel.flat(self.fee_bps)
        return FeeModel.from_settings(settings)


def check(spec: BacktestSpec) -> Strategy:
    """The strategy the spec names, built with its parameters (ValueError when it cannot)."""
    try:
        return make_strategy(spec.strategy, spec.params)
    except TypeError as exc:  # a parameter of the wrong kind for the strategy
        raise ValueError(f"{spec.strategy}: {exc}") from None


def run(
    spec: BacktestSpec,
    bars: Bars,
    settings: Settings | None = None,
    strategy: Strategy | None = None,
) -> BacktestResult:
    """Run the spec on `bars` (LookAheadError or ValueError from the engine pass through);
    `strategy`: the one `check(spec)` already built (else it is built here)."""
    strategy = strategy if strategy is not None else check(spec)
    limits, rules = None, None
    if spec.guard:
        from omc.floor.trading.guard import Guard, GuardSettings
        from omc.floor.venues.paper import PaperSettings

        limits = Guard(GuardSettings().limits())
        rules = PaperSettings().instruments()  # the paper venue's instrument rules
    return run_backtest(
        strategy,
        bars,
        cash=spec.cash,
        fees=spec.fees(settings),
        slippage=SlippageModel(spec.slippage_bps, spec.volume_share),
        guard=limits,
        instruments=rules,
    )
