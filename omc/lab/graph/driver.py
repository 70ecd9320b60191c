"""Driving a session's graph: start it, answer its question, decide at its approval gate,
revise it, or resume it after a crash — each runs the graph until its next pause (a question,
the approval gate) or its end, and returns the session as a `StudyOutcome`.

A session's thread lives in the checkpointer (same database as the session), so any process
can continue it: `resume` picks up at the last checkpoint (the step that was running when
the process died runs again from its top; the steps before it are not repeated). Every call
refuses a session another live process is running (`SessionBusy`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph.types import Command

from omc.core.process import owner_gone
from omc.core.time import utcnow
from omc.lab.graph.build import compiled, config
from omc.lab.graph.checkpoint import checkpointer
from omc.lab.graph.nodes import Runtime
from omc.lab.session import events, store
from omc.lab.session.runner import StudyOutcome, outcome_of


class SessionBusy(ValueError):
    """Another live process is running this session."""


class NotPaused(ValueError):
    """The session is not waiting for this (no question to answer, no approval gate)."""


@dataclass(frozen=True)
class Pending:
    """Where a session's thread stands: `kind` is `question`, `approval`, `step` (a step is
    due: it was running when its process died) or None (the graph ended, or never ran)."""

    kind: str | None
    values: dict[str, Any]
    next: tuple[str, ...]


def pending(rt: Runtime, session_id: str) -> Pending:
    with checkpointer(rt.engine) as saver:
        snapshot = compiled(rt, saver).get_state(config(session_id))
    kinds = [i.value.get("kind") for i in snapshot.interrupts if isinstance(i.value, dict)]
    kind = kinds[0] if kinds else ("step" if snapshot.next else None)
    return Pending(kind, dict(snapshot.values or {}), tuple(snapshot.next))


def _claim(rt: Runtime, session_id: str) -> store.SessionRecord:
    record = store.get_session(rt.engine, session_id)
    if record.status == "running":
        with rt.engine.connect() as conn:
            from sqlalchemy import select

            from omc.lab.models import LabSession

            owner = conn.scalar(select(LabSession.owner).where(LabSession.id == session_id))
        if not owner_gone(owner):
            raise SessionBusy(f"session {session_id} is running in another process ({owner})")
    return record


def _drive(rt: Runtime, session_id: str, payload: Any) -> StudyOutcome:
    with checkpointer(rt.engine) as saver:
        graph = compiled(rt, saver)
        graph.invoke(payload, config(session_id), durability="sync")
        snapshot = graph.get_state(config(session_id))
    values: dict[str, Any] = dict(snapshot.values or {})
    outcome = outcome_of(store.get_session(rt.engine, session_id))
    result = values.get("result") or {}
    outcome.holdout_flagged = bool(result.get("holdout_flagged"))
    if values.get("question"):
        outcome.question = values["question"]
    return outcome


def start(
    rt: Runtime,
    goal: str,
    *,
    options: dict[str, Any] | None = None,
    base_plan: dict[str, Any] | None = None,
    answers: list[str] | None = None,
    session_id: str | None = None,
    now: datetime | None = None,
) -> StudyOutcome:
    """A new session of `goal`, run until its first pause or its end. `options`: the CLI's
    explicit options (JSON values; `as_of` ISO-8601), `base_plan`: a plan file's JSON."""
    started = now or utcnow()
    sid = session_id or store.new_session_id(started)
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    store.save_session(rt.engine, sid, goal=goal, status="planned")
    events.append(rt.engine, sid, "session", {"goal": goal, "options": opts, "graph": True})
    state = {
        "session": sid,
        "goal": goal,
        "as_of": started.isoformat(),
        "options": opts,
        "base_plan": base_plan,
        "answers": [a for a in (answers or []) if a.strip()],
        "instructions": [],
        "revision": 0,
        "trial_offset": 0,
        "refs": {},
        "status": "running",
    }
    return _drive(rt, sid, state)


def answer(rt: Runtime, session_id: str, text: str) -> StudyOutcome:
    """Answer the question session `session_id` is waiting on, and run on."""
    _claim(rt, session_id)
    if not text.strip():
        raise ValueError("the answer is empty")
    if pending(rt, session_id).kind != "question":
        raise NotPaused(f"session {session_id} has no open question")
    return _drive(rt, session_id, Command(resume=text))


def decide(
    rt: Runtime, session_id: str, approval: str, *, reason: str | None = None, force: bool = False
) -> StudyOutcome | None:
    """Approve or reject at the approval gate (the store's rules apply: a no_edge study needs
    force and a reason). None when the session is not at the gate (a session run before the
    graph, or decided already): the caller stores the decision directly."""
    record = _claim(rt, session_id)
    store.check_decision(record, approval, reason=reason, force=force)
    if pending(rt, session_id).kind != "approval":
        return None
    word = "approve" if approval == "approved" else "reject"
    return _drive(
        rt, session_id, Command(resume={"decision": word, "reason": reason, "force": force})
    )


def revise(rt: Runtime, session_id: str, instructions: str) -> StudyOutcome:
    """Send the study at the approval gate back with `instructions` (words for the planner,
    or a JSON object of plan fields): it is planned again and re-run from the first step the
    new plan changes."""
    _claim(rt, session_id)
    text = instructions.strip()
    if not text:
        raise ValueError("revise needs instructions (words, or a JSON object of plan fields)")
    where = pending(rt, session_id)
    if where.kind != "approval":
        raise NotPaused(f"session {session_id} is not waiting for approval: nothing to revise")
    if text.startswith("{"):
        try:
            if not isinstance(json.loads(text), dict):
                raise ValueError
        except ValueError:
            raise ValueError(
                "revise: the JSON instructions must be one object of plan fields"
            ) from None
    elif where.values.get("base_plan"):
        raise ValueError(
            "this session runs a plan file: revise it with a JSON object of plan fields "
            "(e.g. '{\"trials\": 10}')"
        )
    return _drive(rt, session_id, Command(resume={"decision": "revise", "instructions": text}))


def resume(rt: Runtime, session_id: str) -> StudyOutcome:
    """Continue session `session_id` from its last checkpoint (after a crash or a kill)."""
    _claim(rt, session_id)
    where = pending(rt, session_id)
    if not where.values:
        raise NotPaused(f"session {session_id} was not run through the graph: nothing to resume")
    if where.kind != "step":
        outcome = outcome_of(store.get_session(rt.engine, session_id))
        outcome.question = where.values.get("question") or outcome.question
        return outcome  # waiting for a person, or finished: nothing to run
    events.append(rt.engine, session_id, "resumed", {"next": list(where.next)})
    return _drive(rt, session_id, None)
