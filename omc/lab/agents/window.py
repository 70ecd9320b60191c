"""What the LLM may read: the training window, never the evaluation or holdout windows.

A study's bars are cut (`omc.lab.evaluation.splits`) into walk-forward test blocks and a
sealed holdout; the first test block starts after fold 0's training rows. The LLM reads data
up to `cut` only: the last bar of fold 0's training rows under the base plan's evaluation
(for each catalog series; a tool that names no symbol gets the earliest cut). `guard(...)`
checks one tool call the LLM asked for: an `as_of` argument is refused (the session's as_of
is injected by code), a `start` or `end` after the cut is refused (the evaluation windows),
and a missing `end` becomes the cut. `llm_tool_schemas(window)` are the data tools' schemas
without `as_of`. `plan_window_ok(plan, series, window)` tells whether a proposed plan keeps
its evaluation windows after the cut (a plan with more folds or a larger holdout moves its
first test block earlier; the validation repairs that).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from omc.core.time import iso_utc, parse_utc, timeframe_seconds
from omc.lab.catalog import Catalog, Series
from omc.lab.evaluation.splits import plan_splits
from omc.lab.plan import ResearchPlan
from omc.lab.tools import TOOLS, tool_schemas


def _bar_time(series: Series, position: int) -> datetime | None:
    if series.first is None:
        return None
    return series.first + timedelta(seconds=position * timeframe_seconds(series.timeframe))


def first_test_time(series: Series, plan: ResearchPlan) -> datetime | None:
    """When the first walk-forward test block of `plan` on `series` starts (None: too few
    bars for the plan, or no times known)."""
    try:
        splits = plan_splits(series.bars, plan)
    except ValueError:
        return None
    return _bar_time(series, splits.folds[0].test[0])


def series_cut(series: Series, plan: ResearchPlan) -> datetime | None:
    """The last bar of fold 0's training rows (what the LLM may read of `series`)."""
    try:
        splits = plan_splits(series.bars, plan)
    except ValueError:
        return series.first
    return _bar_time(series, max(0, splits.folds[0].train[1] - 1))


@dataclass(frozen=True)
class TrainingWindow:
    """The LLM-visible end of each symbol's data (`cuts`), and the earliest of them."""

    cuts: dict[str, datetime] = field(default_factory=dict)
    default: datetime | None = None

    def cut_for(self, symbol: str | None) -> datetime | None:
        if symbol:
            for name, cut in self.cuts.items():
                if name.upper() == symbol.upper():
                    return cut
        return self.default

    def to_json(self) -> dict[str, Any]:
        return {
            "cuts": {k: iso_utc(v) for k, v in self.cuts.items()},
            "default": iso_utc(self.default) if self.default else None,
        }


def training_window(catalog: Catalog, base: ResearchPlan) -> TrainingWindow:
    """The window under the base plan's target and evaluation, over every catalog series."""
    cuts: dict[str, datetime] = {}
    for series in catalog.series:
        cut = series_cut(series, base)
        if cut is None:
            continue
        key = series.symbol or base.symbols[0]
        cuts[key] = min(cut, cuts.get(key, cut))
    return TrainingWindow(cuts, min(cuts.values()) if cuts else None)


def plan_window_ok(plan: ResearchPlan, series: Series, window: TrainingWindow) -> bool:
    cut = window.cut_for(series.symbol or plan.symbols[0])
    start = first_test_time(series, plan)
    return cut is None or start is None or start > cut


def llm_tool_schemas(window: TrainingWindow) -> list[dict[str, Any]]:
    """The data tools as the LLM sees them: no `as_of` (code sets it) and the window named."""
    end = iso_utc(window.default) if window.default else "the training window's end"
    out = []
    for schema in tool_schemas():
        schema = copy.deepcopy(schema)
        params = schema["function"]["parameters"]
        params.get("properties", {}).pop("as_of", None)
        if "required" in params:
            params["required"] = [r for r in params["required"] if r != "as_of"]
        if "end" in params.get("properties", {}):
            schema["function"]["description"] += (
                f" Only the training window is readable: rows up to {end} (later rows are "
                "the evaluation windows and are refused)."
            )
        out.append(schema)
    return out


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


def guard(
    name: str, args: dict[str, Any], window: TrainingWindow
) -> tuple[dict[str, Any], str | None]:
    """(the arguments to run, None) or (args, the refusal sent back to the LLM)."""
    if args.get("as_of") is not None:
        return args, (
            "refused: as_of is fixed by the session and may not be chosen; call the tool "
            "again without as_of"
        )
    args = {k: v for k, v in args.items() if k != "as_of"}
    tool = TOOLS.get(name)
    if tool is None or "end" not in tool.input.model_fields:
        return args, None
    cut = window.cut_for(args.get("symbol") if isinstance(args.get("symbol"), str) else None)
    if cut is None:
        return args, None
    for key in ("start", "end"):
        when = _time(args.get(key))
        if when is not None and when > cut:
            return args, (
                f"refused: {key} {iso_utc(when)} is after {iso_utc(cut)}, in the evaluation "
                "windows of the study; only the training window (up to that time) may be read"
            )
    if args.get("end") is None:
        args["end"] = iso_utc(cut)
    return args, None


__all__ = [
    "TrainingWindow",
    "first_test_time",
    "guard",
    "llm_tool_schemas",
    "plan_window_ok",
    "training_window",
]
