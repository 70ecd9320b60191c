"""`LlmStudy`: one session's LLM work behind one budget and one `emit` — planning (with the
fallback the user asked for, if any), the narrative and the report's LLM section.

    study = LlmStudy(settings, engine=engine, emit=emit, history=[...])
    result = study.plan(goal, answers, as_of=as_of, options=options)   # LlmError or a plan
    section = study.report_section(plan=..., bars=..., X=..., y=..., splits=..., evaluation=...)

`plan` raises `LlmError` when the LLM fails, unless `OMC_LLM_FALLBACK=deterministic`: then the
deterministic planner plans the goal, a `fallback` event is emitted and the plan's first
assumption says why. `report_section` asks for the narrative (training-window summary only)
and states the model's training cutoff with the evaluation windows that start before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from omc.lab.agents.budget import Audit, Budget, Emit
from omc.lab.agents.errors import LlmError
from omc.lab.agents.settings import LlmSettings
from omc.lab.plan import PlanResult, ResearchPlan

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Engine

    from omc.lab.evaluation.splits import Splits


def join_answers(answers: str | list[str] | None) -> str | None:
    """The planner's `answer`: replies joined with ";", oldest first."""
    if isinstance(answers, list):
        answers = "; ".join(a.strip() for a in answers if a.strip())
    return answers or None


class LlmStudy:
    """`history`: the session's earlier events (`kind` and payload): its `llm_call`s are
    already spent from the budget, and a `fallback` means the LLM failed earlier."""

    def __init__(
        self,
        settings: LlmSettings,
        *,
        engine: Engine | None,
        emit: Emit,
        history: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        from omc.core.masking import Redactor

        self.settings = settings
        self.engine = engine
        past = history or []
        self.budget = Budget.resumed(settings, [p for k, p in past if k == "llm_call"])
        key = settings.api_key.get_secret_value() if settings.api_key else None
        self.emit = Audit(emit, Redactor(key))
        fell = [p for k, p in past if k == "fallback"]
        self.fell_back: str | None = str(fell[-1].get("because")) if fell else None

    @property
    def model(self) -> str:
        return self.settings.model or (
            self.settings.model_path.name if self.settings.model_path else "?"
        )

    def plan(
        self,
        goal: str,
        answers: str | list[str] | None,
        *,
        as_of: datetime,
        options: Mapping[str, Any] | None = None,
    ) -> PlanResult:
        from omc.lab.agents.planner import plan_with_llm

        answer = join_answers(answers)
        try:
            return plan_with_llm(
                goal,
                answer,
                settings=self.settings,
                engine=self.engine,
                as_of=as_of,
                emit=self.emit,
                options=options,
                budget=self.budget,
            )
        except LlmError as exc:
            if self.settings.fallback != "deterministic":
                raise
            return self._fallback(goal, answer, as_of, dict(options or {}), exc)

    def _fallback(
        self,
        goal: str,
        answer: str | None,
        as_of: datetime,
        options: dict[str, Any],
        exc: LlmError,
    ) -> PlanResult:
        from omc.lab.session.runner import prepare_plan

        self.fell_back = exc.line()
        self.emit("fallback", {"planner": "deterministic", "because": exc.line()})
        result = prepare_plan(goal, engine=self.engine, answer=answer, as_of=as_of, **options)
        if result.plan is None:
            return result
        note = (
            f"the LLM failed ({exc.line()}); planned by the deterministic planner as "
            "OMC_LLM_FALLBACK=deterministic asks"
        )
        plan: ResearchPlan = result.plan
        return PlanResult(plan=plan.model_copy(update={"assumptions": [note, *plan.assumptions]}))

    def _view(self, plan: ResearchPlan, bars: pd.DataFrame) -> Any:
        from omc.lab.agents.view import View
        from omc.lab.catalog import Catalog, Series

        first = bars.index[0].to_pydatetime() if len(bars) else None
        series = Series(plan.exchange, plan.symbols[0], plan.timeframe, len(bars), first=first)
        return View(Catalog((series,)), masked=self.settings.mask)

    def report_section(
        self,
        *,
        plan: ResearchPlan,
        bars: pd.DataFrame,
        X: pd.DataFrame,
        y: pd.Series,
        splits: Splits,
        evaluation: dict[str, Any],
    ) -> dict[str, Any]:
        """The report's `llm` object: cutoff and flagged windows, narrative, budget used."""
        from omc.lab.agents.narrative import cutoff_section, narrate, training_summary

        section = cutoff_section(
            provider=self.settings.provider,
            model=self.model,
            cutoff=self.settings.cutoff_of(self.model),
            evaluation=evaluation,
        )
        narrative: str | None = None
        if self.fell_back is None:
            summary = training_summary(plan, bars, X, y, splits)
            try:
                narrative = narrate(
                    summary,
                    settings=self.settings,
                    emit=self.emit,
                    budget=self.budget,
                    view=self._view(plan, bars),
                )
            except LlmError as exc:
                if self.settings.fallback != "deterministic":
                    from omc.lab.session.runner import StudyError

                    raise StudyError(f"narrative: {exc.line()}") from None
                self.fell_back = f"the narrative failed ({exc.line()})"
                self.emit("fallback", {"narrative": None, "because": exc.line()})
            section["narrative_window"] = summary["window"]
        section["narrative"] = narrative
        section["masked"] = self.settings.mask
        section["fallback"] = self.fell_back
        section["budget"] = self.budget.to_json()
        self.emit("cutoff", {k: section[k] for k in ("model", "cutoff", "flagged")})
        return section


__all__ = ["LlmStudy", "join_answers"]
