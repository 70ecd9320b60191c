"""The one place the Lab chooses its planner: `plan_step(...) -> PlanResult`.

With no LLM configured (`settings.llm_provider` missing, empty or `"none"`, the default) the
deterministic offline planner of part 1 plans the goal (`omc.lab.session.runner.prepare_plan`:
a plan file with the CLI's options applied, or `omc.lab.planner.plan_goal` against the
catalog) — the same goal, answers and data always give the same plan.

An LLM planner (the `omc.lab.agents` package, built separately) plugs in here and only here:
whoever lands second wires `plan_step` to call it when `settings.llm_provider` names a
provider, passing `emit` so every LLM call, tool call and proposal lands in the session's
event log. Until then a configured provider is refused with one clear line rather than
silently planned without it (no silent fallback).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from omc.lab.plan import PlanResult, ResearchPlan
from omc.lab.session.events import Emit


class PlanningError(ValueError):
    """The planner cannot plan with these settings (one line)."""


def llm_provider(settings: Any) -> str:
    """The configured LLM provider's name, `"none"` when there is none."""
    name = str(getattr(settings, "llm_provider", None) or "none").strip().lower()
    return name or "none"


def plan_step(
    goal: str,
    answers: list[str],
    as_of: datetime | None,
    settings: Any,
    engine: Engine,
    emit: Emit,
    *,
    base_plan: ResearchPlan | None = None,
    options: dict[str, Any] | None = None,
) -> PlanResult:
    """Plan `goal` with the user's `answers` so far (oldest first; revision instructions are
    answers too): a plan, or ONE question. `options`: the CLI's explicit options (symbol,
    timeframe, exchange, data_file, horizon_bars, trials), which beat the goal's words;
    `base_plan`: a plan file to run instead of planning. Raises ValueError (one line) for
    options the plan cannot take."""
    from omc.lab.session.runner import prepare_plan

    provider = llm_provider(settings)
    if provider != "none":
        raise PlanningError(
            f"LLM provider {provider!r} is configured but this build has no LLM planner "
            "(set OMC_LLM_PROVIDER=none for the deterministic planner)"
        )
    answer = "; ".join(a for a in answers if a.strip()) or None
    result = prepare_plan(
        goal, engine=engine, plan=base_plan, answer=answer, as_of=as_of, **(options or {})
    )
    emit(
        "planner",
        {
            "planner": "deterministic",
            "answers": len(answers),
            "outcome": "plan" if result.plan is not None else "question",
        },
    )
    return result
