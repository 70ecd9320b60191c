"""What a promoted model sees: its exchange features as one Floor indicator, its ledger
features at a bar's close from frames read point-in-time (`LedgerFeed`), by the feature
library's own code (`features.spec.family_columns`, what `build_matrix` tabulates)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Engine

from omc.core.time import ensure_utc, utcnow
from omc.lab.evaluation import trading  # noqa: F401 - before training (their import order)
from omc.lab.features import library
from omc.lab.features.inputs import LEDGER_MARGIN, load_ledgers
from omc.lab.features.spec import FeatureSpec, family_columns
from omc.lab.training.models import predict_proba

FloatArray = npt.NDArray[np.float64]


def part(spec: FeatureSpec, families: list[str]) -> FeatureSpec | None:
    """The spec restricted to `families` (same parameters), None when there are none."""
    if not families:
        return None
    chosen = {f: spec.families[f] for f in families}
    return FeatureSpec(
        families=chosen,
        coin=spec.coin,
        protocol=spec.protocol,
        code_version=library.code_version(chosen),
    )


def bar_context(
    n: int, ledgers: Mapping[str, pd.DataFrame], at: npt.NDArray[np.int64] | None = None
) -> library.Context:
    """A feature-library context of `n` bars with no prices (ledger families read only the
    close times `at` and the frames)."""
    empty = np.full(n, np.nan)
    stamps = np.zeros(n, dtype=np.int64) if at is None else at
    return library.Context(empty, empty, empty, empty, empty, stamps, ledgers)


def exchange_function(spec: FeatureSpec, columns: list[str]) -> Callable[..., FloatArray]:
    """The indicator of the exchange features `columns`: (n bars, len(columns)), causal."""

    def lab_features(
        open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray
    ) -> FloatArray:
        o, h, lo, c, v = (
            np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close, volume)
        )
        at = np.zeros(len(c), dtype=np.int64)  # exchange families read only the bars
        made = family_columns(spec, library.Context(o, h, lo, c, v, at, {}))
        return np.column_stack([made[c] for c in columns])

    return lab_features


def ledger_features_at(
    spec: FeatureSpec, ledgers: Mapping[str, pd.DataFrame], close: datetime
) -> dict[str, float]:
    """The ledger features of the bar that closed at `close`: the families' as-of join on
    knowledge time over the frames, for that one moment (row i of `build_matrix`)."""
    at = np.array([pd.Timestamp(close).as_unit("ns").value], dtype=np.int64)
    made = family_columns(spec, bar_context(1, ledgers, at))
    return {name: float(values[0]) for name, values in made.items()}


def warmup_bars(spec: FeatureSpec | None) -> int:
    """Bars the exchange features need before the first decision: the longest window or lag
    (RSI ten periods, for Wilder's smoothing to forget its start), plus one."""
    if spec is None:
        return 0
    longest = 1
    for name, params in spec.families.items():
        for value in params.values():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, int | float) and not isinstance(v, bool):
                    longest = max(longest, int(v) * (10 if name == "rsi" else 1))
    return longest + 1


class LedgerFeed:
    """The ledger frames a promoted model reads, point-in-time (module doc): read through
    `pit` as of now (never before the bar's close), again whenever a bar closes after the
    last read."""

    def __init__(
        self,
        engine: Callable[[], Engine | None],
        spec: FeatureSpec,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._spec = spec
        self._clock = clock
        self._frames: dict[str, pd.DataFrame] | None = None
        self.as_of: datetime | None = None
        self.reads = 0

    def frames(self, close: datetime) -> dict[str, pd.DataFrame]:
        close = ensure_utc(close)
        if self._frames is None or self.as_of is None or close > self.as_of:
            as_of = max(close, ensure_utc(self._clock()))
            self._frames = load_ledgers(
                self._engine(),
                list(self._spec.families),
                self._spec.coin,
                self._spec.protocol,
                as_of,
                close - LEDGER_MARGIN,
            )
            self.as_of = as_of
            self.reads += 1
        return self._frames


def score(model: Any, row: FloatArray, at: datetime) -> float:
    """The model's probability of the positive class for one bar's features (`at`: the
    bar's close; tests record what the model saw here)."""
    return float(predict_proba(model, row[None, :])[0])
