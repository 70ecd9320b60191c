"""The Strategy class of `model:<ID>` (see `omc.lab.promotion`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import Engine

from omc.floor.strategy import Context, Series, Strategy, Targets
from omc.lab.features.inputs import FAMILY_INPUTS
from omc.lab.features.spec import family_columns
from omc.lab.promotion.artifact import PREFIX, THRESHOLD, Promoted, refuse
from omc.lab.promotion.features import (
    FloatArray,
    LedgerFeed,
    bar_context,
    exchange_function,
    ledger_features_at,
    part,
    score,
    warmup_bars,
)

log = logging.getLogger(__name__)
GAPS = 5  # bars whose spacing is compared with the study's
MEMO_SIZE = 100_000  # entries kept per memo (a long live session starts afresh beyond it)


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


def strategy_for(promoted: Promoted, engine: Callable[[], Engine | None]) -> type[Strategy]:
    """The Strategy class of `model:<ID>` (module doc). `engine` gives the database the
    ledger features are read from (called only when the model has ledger features)."""
    spec, columns = promoted.spec, promoted.columns
    ledger_families = [f for f in spec.families if f in FAMILY_INPUTS]
    exchange_families = [f for f in spec.families if f not in FAMILY_INPUTS]
    ex_spec, led_spec = part(spec, exchange_families), part(spec, ledger_families)
    ex_made = set(family_columns(ex_spec, bar_context(1, {}))) if ex_spec else set()
    led_made = set(family_columns(led_spec, bar_context(1, {}))) if led_spec else set()
    missing = [c for c in columns if c not in ex_made | led_made]
    if missing or not columns:
        raise refuse(promoted.session, f"its spec does not make the features {missing}")
    ex_cols = [c for c in columns if c in ex_made]
    led_cols = [c for c in columns if c in led_made]
    ex_pos = np.array([columns.index(c) for c in ex_cols], dtype=np.int64)
    led_pos = np.array([columns.index(c) for c in led_cols], dtype=np.int64)
    feed = LedgerFeed(engine, led_spec) if led_spec is not None and led_cols else None
    fn = exchange_function(ex_spec, ex_cols) if ex_spec is not None and ex_cols else None
    warm = warmup_bars(ex_spec if ex_cols else None)
    model, session, study_bar = promoted.model, promoted.session, promoted.bar_seconds
    # pure functions of a bar's close (ledger rows) and of a row (scores), shared by the
    # fresh copies the backtester runs on prefixes: each bar is computed once per process
    ledger_rows: dict[datetime, FloatArray] = {}
    scores: dict[tuple[datetime, bytes], float] = {}

    class PromotedModel(Strategy):
        """A Lab model (see `omc.lab.promotion`)."""

        name = f"{PREFIX}:{session}"
        defaults: ClassVar[dict[str, Any]] = {"threshold": THRESHOLD, "size": 1.0}
        promoted_model: ClassVar[Promoted] = promoted
        ledger_feed: ClassVar[LedgerFeed | None] = feed

        def validate(self) -> None:
            t, s = float(self.params["threshold"]), float(self.params["size"])
            if not 0.0 < t < 1.0:
                raise ValueError(f"{self.name}: threshold must be between 0 and 1, got {t}")
            if not 0.0 < s <= 1.0:
                raise ValueError(f"{self.name}: size must be above 0 and at most 1, got {s}")
            self.params["threshold"], self.params["size"] = t, s

        def warmup(self) -> int:
            return warm

        def __repr__(self) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
            return f"{self.name}({args})"

        def init(self, ctx: Context) -> None:
            if len(ctx.symbols) != 1:
                raise ValueError(
                    f"{self.name} trades one symbol (it was trained on {promoted.symbol}), "
                    f"not {len(ctx.symbols)}"
                )
            self.symbol = ctx.symbols[0]
            self.long = False
            self.last_now: datetime | None = None
            self.gaps: list[float] = []
            self.X: Series | None = None
            if fn is not None:
                view = ctx.data(self.symbol)
                cols = (view.open, view.high, view.low, view.close, view.volume)
                self.X = ctx.indicator(fn, *cols, name="lab_features")

        def features(self, ctx: Context) -> FloatArray | None:
            """This bar's features in the model's order; None while one is not known yet."""
            row = np.empty(len(columns))
            if self.X is not None:
                row[ex_pos] = np.atleast_1d(self.X[-1])
                if not np.isfinite(row[ex_pos]).all():
                    return None
            if feed is not None and led_spec is not None:
                close = ctx.now
                known = ledger_rows.get(close)
                if known is None:
                    values = ledger_features_at(led_spec, feed.frames(close), close)
                    known = np.array([values[c] for c in led_cols], dtype=np.float64)
                    _remember(ledger_rows, close, known)
                row[led_pos] = known
            return row if np.isfinite(row).all() else None

        def spacing(self, now: datetime) -> None:
            """Warn once when this run's bars are not the study's (e.g. one-price bars of
            live quotes for a model trained on hourly candles)."""
            last, self.last_now = self.last_now, now
            if last is None or study_bar is None or len(self.gaps) >= GAPS:
                return
            self.gaps.append((now - last).total_seconds())
            if len(self.gaps) == GAPS:
                gap = float(np.median(self.gaps))
                if not study_bar / 1.5 <= gap <= study_bar * 1.5:
                    log.warning(
                        "%s was trained on bars %.0f s apart; this run's bars are %.0f s "
                        "apart: its exchange features describe these bars, not the study's",
                        self.name, study_bar, gap,
                    )  # fmt: skip

        def on_bar(self, ctx: Context) -> Targets | None:
            self.spacing(ctx.now)
            row = self.features(ctx)
            if row is None:
                return None
            key = (ctx.now, row.tobytes())
            p = scores.get(key)
            if p is None:
                p = score(model, row, ctx.now)
                _remember(scores, key, p)
            want = p > self.params["threshold"]
            if math.isnan(p) or want == self.long:
                return None
            self.long = want
            return {self.symbol: self.params["size"] if want else 0.0}

    PromotedModel.__qualname__ = PromotedModel.__name__ = f"Model_{session.replace('-', '_')}"
    return PromotedModel
