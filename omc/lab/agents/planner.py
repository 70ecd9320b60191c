"""The LLM planner: the user's model plans a study by tool calling; code decides.

    plan_with_llm(goal, answers, *, settings, engine, as_of, emit, options=None, budget=None)
        -> PlanResult

A ReAct loop over LangChain's tool calling: the model is offered the Lab's read-only data
tools (without `as_of`: the session's as_of is injected here), `propose_plan` and `ask_user`.
Each reply is one LLM call (budgeted, an `llm_call` event: model, tokens, cost, seconds).
Each data-tool call is guarded (`window.guard`: another as_of or rows of the evaluation
windows are refused, a `tool_refused` event and the refusal sent back), then run at the
session's as_of (a `tool_call` event: arguments and a result summary). A malformed call
(arguments that are not JSON, an unknown tool, invalid arguments) is sent back as an error
(`tool_error`); a proposal is reviewed (`proposal`, then `validation`, a `repair` per repair
or a `rejection`); an accepted one is the `decision`. After `max_repairs` rejected or
malformed calls the planner stops with `invalid_proposal`. The deterministic planner's plan of
the same goal is the base: its trial budget and evaluation are the limits, and its question
is returned when the catalog is empty. Any failure raises `LlmError`; nothing falls back
silently (`fallback` is the caller's choice: `plan_or_fallback`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from omc.core.time import ensure_utc, iso_utc
from omc.lab.agents.budget import Audit, Budget, Emit
from omc.lab.agents.errors import LlmError
from omc.lab.agents.proposal import Context, ask_schema, proposal_schema, review
from omc.lab.agents.providers import Chat, approx_tokens, open_chat, provider_error
from omc.lab.agents.settings import LlmSettings
from omc.lab.agents.view import View
from omc.lab.agents.window import TrainingWindow, guard, llm_tool_schemas, training_window
from omc.lab.plan import SEARCH_BOUNDS, PlanResult, ResearchPlan

if TYPE_CHECKING:
    from sqlalchemy import Engine

SYSTEM = """You plan one quantitative research study for Oh My Coins, a crypto research lab.
Rules you cannot change:
- Deterministic code computes every number and every evaluation decision; you propose only.
- The session's point in time is fixed by the Lab; never pass as_of to a tool.
- You may read the training window only: data up to {cut}. Later rows belong to the
  evaluation windows and are refused.
- Finish by calling propose_plan exactly once with a study inside the limits below, or
  ask_user with one question when the goal cannot be planned without the user.
Limits: trial budget {trials}; models {models}; feature families {families}; search-space
bounds {bounds}."""


def _catalog_lines(ctx: Context) -> list[str]:
    lines = [f"- {s.describe()}" for s in ctx.catalog.series]
    return lines or ["- (no stored candle series)"]


def _prompt(goal: str, answers: str | None, ctx: Context, view: View) -> list[Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    from omc.lab.plan import FAMILY_LEDGER

    cut = ctx.window.default
    system = SYSTEM.format(
        cut=iso_utc(cut) if cut else "the start of the data",
        trials=ctx.base.trials,
        models=", ".join(SEARCH_BOUNDS),
        families=", ".join(f"{k} ({v})" for k, v in FAMILY_LEDGER.items()),
        bounds=json.dumps(
            {m: {p: [b[1], b[2]] for p, b in s.items()} for m, s in SEARCH_BOUNDS.items()}
        ),
    )
    base = ctx.base.model_dump(mode="json", exclude={"assumptions", "goal", "as_of"})
    said = [f"Goal: {goal}", *([f"The user's answers: {answers}"] if answers else [])]
    user = [
        "Stored candle series (the catalog):",
        *_catalog_lines(ctx),
        "Training window ends (per symbol): " + json.dumps(ctx.window.to_json()["cuts"]),
        "The deterministic planner's reading of the goal (improve on it if the goal asks for "
        "more): " + json.dumps(base),
    ]
    if view.masked:
        user.append("Coins and dates are masked (COIN1…, shifted dates): use them as given.")
    text = view.out("\n".join(said), loose=True) + "\n" + view.out("\n".join(user))
    return [SystemMessage(view.out(system)), HumanMessage(text)]


def _fit(result: dict[str, Any], limit: int) -> str:
    """The tool result as JSON of at most `limit` characters (rows dropped, oldest first)."""
    text = json.dumps(result, default=str)
    rows = list(result.get("rows") or [])
    while len(text) > limit and rows:
        rows = rows[len(rows) // 2 + 1 :] if len(rows) > 1 else []
        result = {**result, "rows": rows, "returned": len(rows), "truncated": True}
        result["notes"] = [*result.get("notes", []), "rows cut to fit the reply"][-3:]
        text = json.dumps(result, default=str)
    return text[:limit]


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("ok", "tool", "as_of", "total", "returned", "truncated", "columns", "notes", "error")
    return {k: result[k] for k in keys if k in result}


class _Loop:
    """One planning conversation."""

    def __init__(
        self,
        chat: Chat,
        ctx: Context,
        settings: LlmSettings,
        engine: Engine | None,
        as_of: datetime,
        audit: Audit,
        budget: Budget,
        view: View,
    ) -> None:
        self.chat, self.ctx, self.settings = chat, ctx, settings
        self.engine, self.as_of, self.audit, self.budget = engine, as_of, audit, budget
        self.view = view
        self.rejected = 0

    def call(self, bound: Any, messages: list[Any], purpose: str) -> Any:
        self.budget.check()
        started = time.monotonic()
        try:
            reply = bound.invoke(messages)
        except LlmError:
            raise
        except Exception as exc:  # whatever the client raised: one masked line
            error = provider_error(exc, self.chat)
            self.audit(
                "llm_error",
                {
                    "status": error.status,
                    "reason": error.reason,
                    "message": error.message,
                    "model": self.chat.name,
                },
            )
            raise error from None
        seconds = time.monotonic() - started
        usage = getattr(reply, "usage_metadata", None) or {}
        estimated = not usage
        prompt = int(usage.get("input_tokens") or 0) or approx_tokens(
            [getattr(m, "content", "") for m in messages]
        )
        completion = int(usage.get("output_tokens") or 0) or approx_tokens(
            [reply.content, getattr(reply, "tool_calls", [])]
        )
        cost = self.budget.record(self.chat.name, prompt, completion, estimated=estimated)
        self.audit(
            "llm_call",
            {
                "purpose": purpose,
                "provider": self.chat.provider,
                "model": self.chat.name,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "tokens_estimated": estimated,
                "cost_usd": round(cost, 6),
                "priced": self.settings.price_of(self.chat.name) is not None,
                "seconds": round(seconds, 3),
                "call": self.budget.calls,
            },
        )
        self.budget.after()
        return reply

    def bad(self, kind: str, payload: dict[str, Any]) -> None:
        self.rejected += 1
        self.audit(kind, payload)
        if self.rejected > self.settings.max_repairs:
            raise LlmError(
                "invalid_proposal",
                f"{self.chat.name} made {self.rejected} rejected or malformed calls "
                f"(OMC_LLM_MAX_REPAIRS {self.settings.max_repairs}); last: "
                + str(payload.get("error") or payload.get("errors") or kind),
            )

    def data_tool(self, name: str, args: Any, call_id: str) -> str:
        from omc.lab.tools import call_tool

        if not isinstance(args, dict):
            args = {}
        run_args, refusal = guard(name, args, self.ctx.window)
        if refusal is not None:
            self.audit("tool_refused", {"tool": name, "arguments": args, "reason": refusal})
            return json.dumps({"ok": False, "tool": name, "error": refusal})
        if self.engine is None:
            result = {"ok": False, "tool": name, "error": "no database in this session"}
        else:
            result = call_tool(name, run_args, engine=self.engine, as_of=self.as_of)
        self.audit(
            "tool_call",
            {"tool": name, "arguments": run_args, "id": call_id, "result": _summary(result)},
        )
        if not result.get("ok"):
            self.bad("tool_error", {"tool": name, "error": result.get("error")})
        return _fit(result, self.settings.tool_result_chars)

    def run(self, goal: str, answers: str | None) -> PlanResult:
        from langchain_core.messages import HumanMessage, ToolMessage

        tools = [*llm_tool_schemas(self.ctx.window), proposal_schema(), ask_schema()]
        tools = [json.loads(self.view.out(json.dumps(t))) for t in tools]  # examples too
        bound = self.chat.model.bind_tools(tools)
        messages = _prompt(goal, answers, self.ctx, self.view)
        out = self.view.out
        while True:
            reply = self.call(bound, messages, "plan")
            messages.append(reply)
            calls = list(getattr(reply, "tool_calls", []) or [])
            broken = list(getattr(reply, "invalid_tool_calls", []) or [])
            if not calls and not broken:
                self.bad(
                    "rejection",
                    {"error": "the reply called no tool", "content": str(reply.content)[:300]},
                )
                messages.append(
                    HumanMessage(
                        "Call propose_plan with the study (or ask_user with one question)."
                    )
                )
                continue
            for item in broken:
                error = f"malformed call of {item.get('name')}: {item.get('error') or 'bad JSON'}"
                text = json.dumps({"ok": False, "error": error + "; send valid JSON arguments"})
                messages.append(ToolMessage(out(text), tool_call_id=item.get("id") or "call"))
                self.bad(
                    "tool_error",
                    {
                        "tool": item.get("name"),
                        "error": error,
                        "arguments": str(item.get("args"))[:300],
                    },
                )
            decided: PlanResult | None = None
            for item in calls:
                name, call_id = item["name"], item.get("id") or ""
                args = self.view.back(item.get("args") or {})
                if name == "ask_user":
                    question = " ".join(str(args.get("question", "")).split())[:500]
                    if question:
                        self.audit("decision", {"decision": "ask", "question": question})
                        decided = decided or PlanResult(question=question)
                    content = json.dumps({"ok": bool(question)})
                elif name == "propose_plan":
                    self.audit("proposal", {"arguments": args, "id": call_id})
                    result = review(args, self.ctx)
                    self.audit("validation", result.to_json())
                    for repair in result.repairs:
                        self.audit("repair", {"repair": repair})
                    if result.plan is not None:
                        self.audit(
                            "decision",
                            {"decision": "plan", "plan": result.plan.model_dump(mode="json")},
                        )
                        decided = decided or PlanResult(plan=result.plan)
                        content = json.dumps({"ok": True, "repairs": result.repairs})
                    else:
                        content = json.dumps({"ok": False, "errors": result.errors})
                        if decided is None:
                            self.bad("rejection", {"errors": result.errors})
                else:
                    content = self.data_tool(name, args, call_id)
                messages.append(ToolMessage(out(content), tool_call_id=call_id))
            if decided is not None:
                return decided


def _limits_plan(
    goal: str, base: PlanResult, options: Mapping[str, Any], as_of: datetime, catalog: Any
) -> ResearchPlan:
    if base.plan is not None:
        return base.plan
    from omc.lab.planner import DEFAULT_TRIALS

    first = catalog.series[0]
    return ResearchPlan(
        goal=goal,
        symbols=[first.symbol or "?"],
        exchange=first.exchange,
        timeframe=first.timeframe,
        data_file=catalog.data_file,
        trials=options.get("trials") or DEFAULT_TRIALS,
        as_of=as_of,
    )


def plan_with_llm(
    goal: str,
    answers: str | None,
    *,
    settings: LlmSettings,
    engine: Engine | None,
    as_of: datetime,
    emit: Emit,
    options: Mapping[str, Any] | None = None,
    budget: Budget | None = None,
) -> PlanResult:
    """Plan `goal` with the configured LLM (module docstring). `answers`: the user's replies
    to earlier questions ("ETH; binance 1h"). `options`: the CLI's explicit options (symbol,
    exchange, timeframe, data_file, horizon_bars, trials), which beat the LLM. Raises
    LlmError; a catalog with nothing to study returns the deterministic planner's question."""
    from omc.lab.catalog import catalog_for
    from omc.lab.planner import plan_goal

    opts = {k: v for k, v in dict(options or {}).items() if v is not None}
    as_of = ensure_utc(as_of)
    budget = budget or Budget(settings)
    catalog = catalog_for(
        engine, data_file=opts.get("data_file"), symbol=opts.get("symbol"), as_of=as_of
    )
    planner_opts = {
        k: opts.get(k) for k in ("symbol", "exchange", "timeframe", "trials", "data_file")
    }
    base = plan_goal(
        goal, catalog, horizon=opts.get("horizon_bars"), answer=answers, as_of=as_of, **planner_opts
    )
    if not catalog.series:
        return base
    with open_chat(settings) as chat:
        audit = Audit(emit, chat.redactor)
        limits = _limits_plan(goal, base, opts, as_of, catalog)
        window: TrainingWindow = training_window(catalog, limits)
        ctx = Context(goal, catalog, limits, window, opts, f"{chat.provider} {chat.name}")
        audit(
            "llm_session",
            {
                "provider": chat.provider,
                "model": chat.name,
                "endpoint": chat.endpoint,
                "window": window.to_json(),
                "cutoff": _iso(settings.cutoff_of(chat.name)),
            },
        )
        try:
            view = View(catalog, masked=settings.mask)
            loop = _Loop(chat, ctx, settings, engine, as_of, audit, budget, view)
            result = loop.run(goal, answers)
        except LlmError as exc:
            audit(
                "stopped",
                {
                    "status": exc.status,
                    "reason": exc.reason,
                    "message": exc.message,
                    "budget": budget.to_json(),
                },
            )
            raise
        audit("budget", budget.to_json())
        if result.plan is not None:
            result = PlanResult(plan=result.plan.model_copy(update={"as_of": as_of}))
        return result


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


__all__ = ["plan_with_llm"]
