"""The narrative: the LLM explains a study from a training-window summary only, and the
report's LLM section states each model's training cutoff.

`training_summary(plan, bars, X, y, splits)` is computed by code from fold 0's training rows
(the window the planner could read): bar count and span, the label's balance, the returns'
mean and volatility, and each feature's correlation with the label there. It holds nothing
of the walk-forward test blocks or the sealed holdout. `narrate(summary, settings=, emit=)`
refuses a summary that carries evaluation results (`EVALUATION_KEYS`) and returns the
model's explanation (masked, at most `MAX_NARRATIVE` characters). `cutoff_section(...)` lists
the evaluation windows (every test fold and the holdout) and flags those that start before
the model's training cutoff: the model may simply remember what happened then.
"""

from __future__ import annotations

import html
import math
import time
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from omc.core.htmlpage import fmt, html_table
from omc.core.time import iso_utc
from omc.lab.agents.budget import Audit, Budget, Emit
from omc.lab.agents.errors import LlmError
from omc.lab.agents.providers import approx_tokens, open_chat, provider_error
from omc.lab.agents.settings import LlmSettings
from omc.lab.agents.view import View
from omc.lab.evaluation.splits import Splits
from omc.lab.plan import ResearchPlan

MAX_NARRATIVE = 2000
EVALUATION_KEYS = frozenset(
    {
        "oos",
        "holdout",
        "verdict",
        "baseline",
        "folds",
        "trading",
        "trials",
        "calibration",
        "confusion",
        "search",
        "feature_importance",
    }
)
SYSTEM = (
    "You explain a crypto research study to the trader who asked for it, in at most 150 "
    "words. You see a summary of the TRAINING window only; the out-of-sample results are "
    "computed by code and shown next to your text, and you do not know them: never state or "
    "guess a result, a return or an edge. Say what was studied, what the training window "
    "looked like, which features relate to the label there, and what to look for in the "
    "results."
)


def _round(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(float(x)) else None


def training_summary(
    plan: ResearchPlan, bars: pd.DataFrame, X: pd.DataFrame, y: pd.Series, splits: Splits
) -> dict[str, Any]:
    """What the narrative may read: fold 0's training rows only (module docstring)."""
    end = max(1, splits.folds[0].train[1])
    window = bars.iloc[:end]
    returns = np.log(window["close"].astype("float64")).diff().dropna()
    labels = y.iloc[:end].dropna()
    features = X.iloc[:end]
    correlations: dict[str, float | None] = {}
    for name in features.columns:
        pair = pd.concat([features[name], labels], axis=1).dropna()
        if len(pair) > 2 and pair.iloc[:, 0].std() > 0 and pair.iloc[:, 1].std() > 0:
            correlations[str(name)] = _round(pair.iloc[:, 0].corr(pair.iloc[:, 1]))
    top = sorted(correlations.items(), key=lambda kv: -abs(kv[1] or 0.0))[:12]
    return {
        "goal": plan.goal,
        "symbol": plan.symbols[0],
        "timeframe": plan.timeframe,
        "target": plan.target.model_dump(mode="json"),
        "features": list(plan.features),
        "models": list(plan.models),
        "trial_budget": plan.trials,
        "window": {
            "start": iso_utc(window.index[0].to_pydatetime()),
            "end": iso_utc(window.index[-1].to_pydatetime()),
            "bars": len(window),
        },
        "label_share_up": _round(float(labels.mean())) if len(labels) else None,
        "return_mean": _round(float(returns.mean())) if len(returns) else None,
        "return_std": _round(float(returns.std())) if len(returns) > 1 else None,
        "feature_label_correlation": dict(top),
    }


def _leaks(value: Any, path: str = "") -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key) in EVALUATION_KEYS:
                return f"{path}{key}"
            found = _leaks(item, f"{path}{key}.")
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _leaks(item, path)
            if found:
                return found
    return None


def narrate(
    summary: dict[str, Any],
    *,
    settings: LlmSettings,
    emit: Emit,
    budget: Budget | None = None,
    view: View | None = None,
) -> str:
    """The LLM's explanation of `summary` (a `training_summary`). Raises ValueError for a
    summary with evaluation results in it, LlmError when the LLM fails or the budget ends."""
    import json

    from langchain_core.messages import HumanMessage, SystemMessage

    leak = _leaks(summary)
    if leak:
        raise ValueError(f"the narrative reads training-window summaries only, not {leak!r}")
    budget = budget or Budget(settings)
    with open_chat(settings) as chat:
        audit = Audit(emit, chat.redactor)
        shown = view.out(json.dumps(summary, default=str)) if view else json.dumps(summary)
        messages = [SystemMessage(SYSTEM), HumanMessage(shown)]
        budget.check()
        started = time.monotonic()
        try:
            reply = chat.model.invoke(messages)
        except Exception as exc:
            error = provider_error(exc, chat)
            audit(
                "llm_error",
                {
                    "status": error.status,
                    "reason": error.reason,
                    "message": error.message,
                    "model": chat.name,
                },
            )
            raise error from None
        usage = getattr(reply, "usage_metadata", None) or {}
        prompt = int(usage.get("input_tokens") or 0) or approx_tokens(summary)
        completion = int(usage.get("output_tokens") or 0) or approx_tokens(str(reply.content))
        cost = budget.record(chat.name, prompt, completion, estimated=not usage)
        audit(
            "llm_call",
            {
                "purpose": "narrative",
                "provider": chat.provider,
                "model": chat.name,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "tokens_estimated": not usage,
                "cost_usd": round(cost, 6),
                "seconds": round(time.monotonic() - started, 3),
                "call": budget.calls,
            },
        )
        budget.after()
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        if view is not None:
            content = view.back_text(content)
        text = chat.mask(" ".join(content.split()), MAX_NARRATIVE)
        if not text:
            raise LlmError(
                "provider_error", f"{chat.name} returned an empty narrative", reason="bad_response"
            )
        audit("narrative", {"text": text, "window": summary.get("window")})
        return text


def _date(stamp: str) -> date:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()


def cutoff_section(
    *, provider: str, model: str, cutoff: date | None, evaluation: dict[str, Any]
) -> dict[str, Any]:
    """The report's statement of the model's cutoff, with each evaluation window flagged
    when it starts before the cutoff (or when no cutoff is known)."""
    windows = [
        {
            "window": f"fold {f.get('fold')} test",
            "start": f.get("test_start"),
            "end": f.get("test_end"),
        }
        for f in evaluation.get("folds") or []
    ]
    span = (evaluation.get("holdout") or {}).get("span") or []
    if len(span) == 2:
        windows.append({"window": "sealed holdout", "start": span[0], "end": span[1]})
    for w in windows:
        w["before_cutoff"] = cutoff is None or (bool(w["start"]) and _date(w["start"]) < cutoff)
    return {
        "provider": provider,
        "model": model,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "windows": windows,
        "flagged": any(w["before_cutoff"] for w in windows),
    }


def llm_section_html(llm: dict[str, Any]) -> str:
    """The LLM that planned the study: its training cutoff, the evaluation windows that start
    before it (flagged), its narrative (training window only) and the budget it used."""
    cutoff = llm.get("cutoff")
    head = (
        f"<p>Planned with <code>{html.escape(str(llm.get('provider')))}</code> model "
        f"<code>{html.escape(str(llm.get('model')))}</code>; its training data ends "
        f"<b>{html.escape(cutoff) if cutoff else 'at an unknown date'}</b>. The LLM read the "
        "training window only and saw no evaluation or holdout outcome; every number in this "
        "report is computed by code.</p>"
    )
    if llm.get("masked"):
        head += (
            "<p>Coins and dates were masked in what the LLM read (OMC_LLM_MASK); prices were "
            "not, and their level can hint at the coin.</p>"
        )
    if llm.get("flagged"):
        head += (
            "<p class='bad'>FLAGGED: evaluation windows start before the model's training "
            "cutoff (or no cutoff is known): the model may remember what happened in them.</p>"
        )
    rows = [
        [w.get("window"), w.get("start"), w.get("end"), "yes" if w.get("before_cutoff") else "no"]
        for w in llm.get("windows") or []
    ]
    table = html_table(["window", "start", "end", "before the cutoff"], rows)
    text = llm.get("narrative")
    if text:
        span = llm.get("narrative_window") or {}
        story = (
            f"<h3>The LLM's narrative</h3><p class='muted'>From a summary of the training "
            f"window ({html.escape(str(span.get('start')))} → "
            f"{html.escape(str(span.get('end')))}) only.</p><blockquote>"
            f"{html.escape(text)}</blockquote>"
        )
    else:
        why = llm.get("fallback") or "no narrative"
        story = f"<p class='muted'>No narrative: {html.escape(str(why))}</p>"
    budget = llm.get("budget") or {}
    spent = (
        f"<p class='muted'>LLM budget used: {budget.get('calls')} calls, "
        f"{fmt(budget.get('tokens'), '{:,}')} tokens"
        f"{' (estimated)' if budget.get('tokens_estimated') else ''}, "
        f"${fmt(budget.get('cost_usd'), '{:.4f}')} estimated, "
        f"{fmt(budget.get('seconds'), '{:.1f}')} s.</p>"
    )
    return "<h2>LLM</h2>" + head + table + story + spent


__all__ = ["cutoff_section", "llm_section_html", "narrate", "training_summary"]
