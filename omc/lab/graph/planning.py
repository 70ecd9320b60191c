"""The one place the Lab chooses its planner: `plan_step(...) -> PlanResult`.

With no LLM configured (`OMC_LLM_PROVIDER` `none`, the default) the deterministic offline
planner of part 1 plans the goal (`omc.lab.session.runner.prepare_plan`: a plan file with the
CLI's options applied, or `omc.lab.planner.plan_goal` against the catalog) — the same goal,
answers and data always give the same plan. A plan file is always run as it is.

With a provider configured, the user's LLM plans it (`omc.lab.agents.session.LlmStudy`, the
`omc.lab.agents` package): `emit` puts every LLM call, tool call, proposal, validation,
repair and decision in the session's event log, and the session's earlier `llm_call` events
count against its budget. An LLM failure raises `PlanningError` with one line
(`llm provider_error (…): …`) — there is no silent fallback: only
`OMC_LLM_FALLBACK=deterministic` lets the deterministic planner plan instead, and says so.
`llm_settings(settings)` is the LLM configuration the steps use (`settings.llm` when the
runtime's settings carry one, else `OMC_LLM_*`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from omc.lab.plan import PlanResult, ResearchPlan
from omc.lab.session.events import Emit

if TYPE_CHECKING:
    from omc.lab.agents.session import LlmStudy
    from omc.lab.agents.settings import LlmSettings


class PlanningError(ValueError):
    """The planner cannot plan with these settings (one line)."""


def llm_settings(settings: Any) -> LlmSettings:
    """The LLM configuration: `settings.llm` if the runtime carries one, else `OMC_LLM_*`."""
    from omc.lab.agents.settings import LlmSettings

    given = getattr(settings, "llm", None)
    return given if isinstance(given, LlmSettings) else LlmSettings()


def llm_provider(settings: Any) -> str:
    """The configured LLM provider's name, `"none"` when there is none."""
    return llm_settings(settings).provider


def llm_study(settings: Any, engine: Engine, session_id: str, emit: Emit) -> LlmStudy | None:
    """The session's LLM work (None without a provider), its budget resumed from the log."""
    config = llm_settings(settings)
    if not config.enabled:
        return None
    from omc.lab.agents.session import LlmStudy
    from omc.lab.session.events import read

    history = [(e.kind, e.payload) for e in read(engine, session_id)]
    return LlmStudy(config, engine=engine, emit=emit, history=history)


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
    session_id: str | None = None,
) -> PlanResult:
    """Plan `goal` with the user's `answers` so far (oldest first; revision instructions are
    answers too): a plan, or ONE question. `options`: the CLI's explicit options (symbol,
    timeframe, exchange, data_file, horizon_bars, trials), which beat the goal's words;
    `base_plan`: a plan file to run instead of planning. `session_id`: the session whose LLM
    budget and event log the LLM planner uses (without it, the deterministic planner plans).
    Raises ValueError (one line) for options the plan cannot take or an LLM that failed."""
    from omc.lab.session.runner import prepare_plan

    answer = "; ".join(a for a in answers if a.strip()) or None
    study = llm_study(settings, engine, session_id, emit) if session_id and not base_plan else None
    if study is not None:
        from omc.core.time import utcnow
        from omc.lab.agents.errors import LlmError

        try:
            result = study.plan(goal, answers, as_of=as_of or utcnow(), options=options)
        except LlmError as exc:
            raise PlanningError(exc.line()) from None
        emit(
            "planner",
            {
                "planner": "deterministic" if study.fell_back else "llm",
                "provider": study.settings.provider,
                "model": study.model,
                "answers": len(answers),
                "outcome": "plan" if result.plan is not None else "question",
            },
        )
        return result
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


def llm_report(
    rt: Any, state: Any, plan: ResearchPlan, bars: Any, X: Any, y: Any, evaluation: dict[str, Any]
) -> dict[str, Any] | None:
    """The report's LLM section (its narrative from the training window, the model's cutoff
    and the evaluation windows before it) when the user's LLM planned the study; else None."""
    from omc.lab.graph.state import unstash

    sid = state["session"]
    study = None if state.get("base_plan") else llm_study(rt.settings, rt.engine, sid, rt.emit(sid))
    if study is None:
        return None
    search = unstash(state["refs"]["search"])
    return study.report_section(
        plan=plan, bars=bars, X=X, y=y, splits=search.splits, evaluation=evaluation
    )
