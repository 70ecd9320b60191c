"""The feature spec and the feature matrix it determines.

A `FeatureSpec` names the families (in order) with their parameters, the coin and protocol
the ledger features are about, and the library's code version: with the same inputs it
fully determines the matrix (`build_matrix`), and `spec.hash()` changes with any of them.
It is saved with every session (`feature_spec.json`) so a promoted model computes exactly
the features it was trained on.

`features_at(spec, inputs, bar)` computes one bar's features from what was known at that
bar's close (`inputs.until(close)`), rebuilding the matrix on that prefix: the one-bar
reference. Because every family is causal, it equals the row of `build_matrix` for that bar
(tests check it bar by bar). Paper and live trading do not call it: a promoted model
computes its bar through `family_columns` (`omc.lab.promotion`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from omc.lab.features import library
from omc.lab.features.inputs import StudyInputs, bar_close_ns
from omc.lab.plan import ResearchPlan


class FeatureSpec(BaseModel):
    """Families (name -> parameters, in order), coin, protocol and code version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    families: dict[str, dict[str, Any]] = Field(min_length=1)
    coin: str = ""
    protocol: str | None = None
    code_version: str = ""

    @classmethod
    def from_plan(
        cls,
        plan: ResearchPlan,
        inputs: StudyInputs,
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> FeatureSpec:
        """The plan's families with their default parameters (`overrides` per family)."""
        return cls.make(list(plan.features), inputs, overrides)

    @classmethod
    def make(
        cls,
        families: list[str],
        inputs: StudyInputs,
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> FeatureSpec:
        unknown = [f for f in families if f not in library.FAMILIES]
        if unknown:
            raise ValueError(f"unknown feature families: {', '.join(unknown)}")
        chosen = {
            name: {**library.DEFAULTS[name], **(overrides or {}).get(name, {})} for name in families
        }
        return cls(
            families=chosen,
            coin=inputs.coin,
            protocol=inputs.protocol,
            code_version=library.code_version(chosen),
        )

    def hash(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def context(inputs: StudyInputs) -> library.Context:
    bars = inputs.bars

    def col(name: str) -> library.FloatArray:
        return np.ascontiguousarray(bars[name].to_numpy(dtype=np.float64))

    return library.Context(
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=col("close"),
        volume=col("volume"),
        at=bar_close_ns(inputs),
        ledgers=inputs.ledgers,
    )


def build_matrix(spec: FeatureSpec, inputs: StudyInputs) -> pd.DataFrame:
    """The feature matrix: index == inputs.bars.index, one float64 column per feature; row
    i uses only information known by the close of bar i. NaN in warm-up."""
    if spec.code_version and spec.code_version != library.code_version(spec.families):
        raise ValueError(
            "the feature spec was made by another version of the feature library "
            f"({spec.code_version}, this one is {library.code_version(spec.families)})"
        )
    columns = family_columns(spec, context(inputs))
    return pd.DataFrame(columns, index=inputs.bars.index, dtype="float64")


def family_columns(spec: FeatureSpec, ctx: library.Context) -> dict[str, library.FloatArray]:
    """The spec's families applied to `ctx`, in order: {column: values} (what
    `build_matrix` tabulates; a promoted model's exchange features call it on the Floor's
    point-in-time bars)."""
    columns: dict[str, library.FloatArray] = {}
    for name, params in spec.families.items():
        made = library.FAMILIES[name](ctx, **params)
        for column, values in made.items():
            if column in columns:
                raise ValueError(f"feature {column!r} is made by two families")
            columns[column] = np.asarray(values, dtype=np.float64)
    return columns


def features_at(spec: FeatureSpec, inputs: StudyInputs, bar: datetime | pd.Timestamp) -> pd.Series:
    """The features of the bar that opened at `bar`, from what was known at its close."""
    stamp = pd.Timestamp(bar)
    if stamp not in inputs.bars.index:
        raise KeyError(f"no bar opened at {stamp.isoformat()}")
    close = stamp + pd.Timedelta(seconds=inputs.bar_seconds)
    matrix = build_matrix(spec, inputs.until(close))
    return matrix.iloc[-1]
