"""Promotion: an approved Lab session's model as the Floor strategy `model:<ID>`.

`load_promoted(engine, ID)` reads the session's artifact (`<data_dir>/lab/<ID>/`) and refuses,
with one line (`PromotionError`), a session that is unknown, not approved, rejected, or whose
files do not match their hashes (the manifest's content hash, the model file's SHA-256, the
plan's, the feature spec's copy, and the artifact hash the session store recorded when the
study ended). `strategy_for(promoted, engine)` builds the Strategy class the Floor runs like
any built-in one — in `omc backtest`, `omc trade paper` (replay or live quotes) and
`omc trade live`; the command line registers it for the names `model:<ID>`.

What the model sees at a bar is what it was trained on for that bar, by the same code:

* **Exchange features** (`returns`, `volatility`, `rsi`, `sma_ratio`, `volume_z`) are one
  `ctx.indicator` over the Floor's point-in-time OHLCV: the feature library's families
  (`features.spec.family_columns`, what `build_matrix` tabulates). The Floor checks it for
  look-ahead on prefixes in a backtest and runs it on a trailing window of the bars in
  trading (`warmup()` is long enough that the window changes nothing).
* **Ledger features** (`sentiment`, `news_volume`, `tvl`, `fees`, `catalyst`) are computed
  for the bar that just closed, at its close (`ctx.now`), from the ledger frames read through
  `omc.ledgers.pit` (`features.inputs.load_ledgers`) with `as_of` at or after that close: the
  families' as-of join on knowledge time sees only rows known by the close. The frames are
  read once when the first bar closes in the past (a backtest or a replay of history: as of
  now, rows stored after a bar's close are invisible at it because their knowledge time is
  never before they were stored), and read again, as of now, whenever a bar closes after
  the last read (live quotes): a row stored since is seen from the next bar on.

The signal is the study's trading rule (`omc.lab.evaluation.trading`): long `size` of equity
while the model's probability exceeds `threshold` (0.5), flat otherwise, an order only when
that changes, at the next bar's open. The study scores only bars whose label is known, so a
backtest of the promoted model on the sealed holdout also trades its last `horizon` bars; on
the rest of the holdout it makes the study's holdout trades.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Engine

from omc.core.time import ensure_utc, utcnow
from omc.floor.strategy import Context, Series, Strategy, Targets
from omc.lab.evaluation import trading  # noqa: F401 - before training (their import order)
from omc.lab.features import library
from omc.lab.features.inputs import FAMILY_INPUTS, LEDGER_MARGIN, load_ledgers
from omc.lab.features.spec import FeatureSpec, family_columns
from omc.lab.plan import ResearchPlan
from omc.lab.session import store
from omc.lab.session.artifacts import MODEL_FILE, canonical_json, load_manifest
from omc.lab.training.models import predict_proba

FloatArray = npt.NDArray[np.float64]
PREFIX = "model"
THRESHOLD = 0.5  # the study's rule: long while p > 0.5 (evaluation.trading.positions)


class PromotionError(ValueError):
    """A model that cannot be promoted (unknown, not approved, tampered): one clear line."""


@dataclass(frozen=True)
class Promoted:
    """An approved session's model with everything that decides what it sees."""

    session: str
    folder: Path
    model: Any
    plan: ResearchPlan
    spec: FeatureSpec
    columns: list[str]  # the model's inputs, in order
    manifest: dict[str, Any]

    @property
    def symbol(self) -> str:
        return str(self.manifest.get("data", {}).get("symbol") or self.plan.symbols[0])


def _refuse(session_id: str, why: str) -> PromotionError:
    return PromotionError(f"{PREFIX}:{session_id}: {why}")


def load_promoted(engine: Engine, session_id: str, lab_dir: Path | None = None) -> Promoted:
    """The approved session's model, its plan and feature spec, every hash checked (module
    doc); `lab_dir` is where artifacts live when the store has no folder for the session."""
    try:
        record = store.get_session(engine, session_id)
    except store.UnknownSession:
        raise _refuse(session_id, "no such Lab session (see `omc lab sessions`)") from None
    if record.approval == "rejected":
        why = f" ({record.decision_reason})" if record.decision_reason else ""
        raise _refuse(session_id, f"the model was rejected{why}; only an approved one trades")
    if record.approval != "approved":
        raise _refuse(session_id, f"not approved (run `omc lab approve {session_id}` first)")
    folder = Path(record.artifact_dir) if record.artifact_dir else None
    if folder is None and lab_dir is not None:
        folder = lab_dir / session_id
    if folder is None or not (folder / "manifest.json").is_file():
        raise _refuse(session_id, f"no model artifact at {folder}")
    try:
        manifest = load_manifest(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise _refuse(session_id, f"artifact refused: {' '.join(str(exc).split())}") from None
    if record.artifact_hash and manifest.get("content_hash") != record.artifact_hash:
        raise _refuse(session_id, "artifact refused: its manifest is not the one the study wrote")
    plan = _plan(session_id, folder, manifest)
    spec, columns = _spec(session_id, folder, manifest)
    import joblib

    model = joblib.load(folder / manifest.get("model_file", MODEL_FILE))
    return Promoted(session_id, folder, model, plan, spec, columns, manifest)


def _plan(session_id: str, folder: Path, manifest: Mapping[str, Any]) -> ResearchPlan:
    try:
        body = json.loads((folder / "plan.json").read_text())
        plan = ResearchPlan.model_validate(body)
    except (OSError, ValueError, ValidationError) as exc:
        raise _refuse(session_id, f"plan.json unreadable: {type(exc).__name__}") from None
    digest = hashlib.sha256(canonical_json(plan.model_dump(mode="json")).encode()).hexdigest()
    if digest != manifest.get("plan_sha256"):
        raise _refuse(session_id, "artifact refused: plan.json does not match its hash")
    return plan


def _spec(
    session_id: str, folder: Path, manifest: Mapping[str, Any]
) -> tuple[FeatureSpec, list[str]]:
    doc = manifest.get("feature_spec") or {}
    try:
        on_disk = json.loads((folder / "feature_spec.json").read_text())
        spec = FeatureSpec.model_validate(doc["spec"])
    except (OSError, ValueError, KeyError, ValidationError) as exc:
        raise _refuse(session_id, f"feature spec unreadable: {type(exc).__name__}") from None
    if canonical_json(on_disk) != canonical_json(doc) or spec.hash() != doc.get("hash"):
        raise _refuse(session_id, "artifact refused: feature_spec.json does not match its hash")
    unknown = [f for f in spec.families if f not in library.FAMILIES]
    if unknown:
        raise _refuse(session_id, f"feature families this version lacks: {', '.join(unknown)}")
    now = library.code_version(spec.families)
    if spec.code_version != now:
        raise _refuse(
            session_id,
            f"its features were made by another version of the feature library "
            f"({spec.code_version}, this one is {now}): run the study again",
        )
    return spec, [str(c) for c in doc.get("features", [])]


# ----------------------------------------------------------------------------- features


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


# ----------------------------------------------------------------------------- strategy

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
        raise _refuse(promoted.session, f"its spec does not make the features {missing}")
    ex_cols = [c for c in columns if c in ex_made]
    led_cols = [c for c in columns if c in led_made]
    ex_pos = np.array([columns.index(c) for c in ex_cols], dtype=np.int64)
    led_pos = np.array([columns.index(c) for c in led_cols], dtype=np.int64)
    feed = LedgerFeed(engine, led_spec) if led_spec is not None and led_cols else None
    fn = exchange_function(ex_spec, ex_cols) if ex_spec is not None and ex_cols else None
    warm = warmup_bars(ex_spec if ex_cols else None)
    model, session = promoted.model, promoted.session
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

        def on_bar(self, ctx: Context) -> Targets | None:
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
