"""A session's LLM budget: calls, tokens, estimated cost and wall time, and the audit events.

One `Budget` per session, shared by the planner and the narrative. `check()` before a call
raises `LlmError("budget_exhausted", reason=calls|tokens|cost|seconds)` when a limit is
reached; `record(...)` after a call adds its tokens and cost (the price table of
`LlmSettings.prices`, USD per 1M tokens) and raises the same error when the call went over.
`Audit` is the masked `emit`: every payload's strings pass the session's `Redactor`, so the
key can never reach the event log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omc.core.masking import Redactor
from omc.lab.agents.errors import LlmError
from omc.lab.agents.settings import LlmSettings

Emit = Callable[[str, dict[str, Any]], None]


def no_events(kind: str, payload: dict[str, Any]) -> None:
    """The `emit` of a caller that keeps no event log."""


@dataclass
class Audit:
    """`emit` with every string of a payload masked (known secrets and credential patterns)."""

    emit: Emit
    redactor: Redactor = field(default_factory=Redactor)

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.emit(kind, self._clean(payload))

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redactor.text(value)
        if isinstance(value, dict):
            return {str(k): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value


@dataclass
class Budget:
    """What a session may spend on its LLM, and what it spent."""

    settings: LlmSettings
    started: float = field(default_factory=time.monotonic)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    estimated_tokens: bool = False  # some call had no usage report: counts are estimates
    spent_seconds: float = 0.0  # LLM seconds of earlier steps of the session (a resume)

    @classmethod
    def resumed(cls, settings: LlmSettings, calls: list[dict[str, Any]]) -> Budget:
        """A budget that has already spent the session's earlier `llm_call` events (the plan
        step's calls count against the narrative's, and a resumed session keeps its spend)."""
        budget = cls(settings)
        for call in calls:
            budget.calls += 1
            budget.prompt_tokens += int(call.get("prompt_tokens") or 0)
            budget.completion_tokens += int(call.get("completion_tokens") or 0)
            budget.cost_usd += float(call.get("cost_usd") or 0.0)
            budget.spent_seconds += float(call.get("seconds") or 0.0)
            budget.estimated_tokens = budget.estimated_tokens or bool(call.get("tokens_estimated"))
        return budget

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def seconds(self) -> float:
        return self.spent_seconds + time.monotonic() - self.started

    def _over(self) -> tuple[str, str] | None:
        s = self.settings
        if self.tokens > s.max_tokens:
            return "tokens", f"{self.tokens} tokens used, the budget is {s.max_tokens}"
        if self.cost_usd > s.max_cost_usd:
            return "cost", f"${self.cost_usd:.4f} spent, the budget is ${s.max_cost_usd:.4f}"
        if self.seconds > s.max_seconds:
            return "seconds", f"{self.seconds:.1f} s used, the budget is {s.max_seconds:g} s"
        return None

    def check(self) -> None:
        """Before a call: raise `budget_exhausted` when one more call is not allowed."""
        over = self._over()
        if over is None and self.calls >= self.settings.max_calls:
            over = "calls", f"{self.calls} LLM calls made, the budget is {self.settings.max_calls}"
        if over is not None:
            reason, text = over
            raise LlmError(
                "budget_exhausted", f"{text} (OMC_LLM_MAX_{reason.upper()})", reason=reason
            )

    def record(self, model: str, prompt: int, completion: int, *, estimated: bool) -> float:
        """Add one call; returns its estimated cost (0 when the model has no price)."""
        self.calls += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.estimated_tokens = self.estimated_tokens or estimated
        price = self.settings.price_of(model)
        cost = 0.0 if price is None else (prompt * price[0] + completion * price[1]) / 1e6
        self.cost_usd += cost
        return cost

    def after(self) -> None:
        """After a call: raise `budget_exhausted` when it went over the tokens, cost or time."""
        over = self._over()
        if over is not None:
            reason, text = over
            raise LlmError(
                "budget_exhausted", f"{text} (OMC_LLM_MAX_{reason.upper()})", reason=reason
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.tokens,
            "tokens_estimated": self.estimated_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 3),
            "limits": {
                "calls": self.settings.max_calls,
                "tokens": self.settings.max_tokens,
                "cost_usd": self.settings.max_cost_usd,
                "seconds": self.settings.max_seconds,
            },
        }
