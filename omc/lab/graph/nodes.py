"""The graph's steps: each a function of (runtime, state) returning the state's update.

plan (the planner, or its one question) -> ask (interrupt: the person answers) -> plan ...
-> retrieve (point-in-time inputs) -> features (feature matrix and labels) -> check (coverage,
sample size, class balance, leakage; refused features dropped) -> train (the search; every
trial stored) -> evaluate (the sealed holdout opened once) -> report (artifacts, report,
session `pending_approval`) -> approval (interrupt: approve / reject / revise) -> promote
(the decision stored; an approved model becomes the Floor's `model:<ID>`).

Re-run safety: LangGraph re-runs an interrupted or killed step from its top, so every side
effect is idempotent — stashed results are rewritten, trials are upserted by number, a
session's holdout opening is keyed by (dataset, session), session rows are merged — and the
gates (`ask`, `approval`) do nothing before their `interrupt()`.

Every step start and end, the plan, questions, answers, decisions and errors go to the
session's event log (`omc.lab.session.events`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.types import interrupt
from sqlalchemy import Engine

from omc.core.time import parse_utc
from omc.lab.graph.state import LabState, stash, unstash, work_dir
from omc.lab.plan import ResearchPlan
from omc.lab.session import events, store
from omc.lab.session.runner import Progress, StudyError, _baseline_summary, _one_line

log = logging.getLogger(__name__)
PAUSE_ENV = "OMC_LAB_PAUSE_AT"
"""`OMC_LAB_PAUSE_AT=<step>` (or `<step>:end`, after the step's work and before its
checkpoint) makes the process print `omc lab: paused at ...` to stderr and wait there forever:
a test (or a person) kills it at a known point to check the resume."""

Node = Any  # a LangGraph node: LabState -> its update (typed loosely for StateGraph)

# which plan fields each step reads first: a revision re-runs from the earliest one changed
_RERUN = (
    ("retrieve", ("symbols", "exchange", "timeframe", "data_file", "protocol", "ledgers", "as_of")),
    ("features", ("features", "target")),
    ("check", ("models", "trials", "seed", "evaluation.scheme", "evaluation.folds",
               "evaluation.embargo_bars", "evaluation.holdout_fraction")),
    ("evaluate", ("evaluation.fee_bps", "evaluation.min_auc_lift",
                  "evaluation.min_deflated_sharpe_probability")),
)  # fmt: skip


def rerun_from(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first step whose inputs differ between plans `old` and `new` (`report` if none)."""

    def get(plan: dict[str, Any], key: str) -> Any:
        head, _, tail = key.partition(".")
        value = plan.get(head)
        return value.get(tail) if tail and isinstance(value, dict) else value

    for step, keys in _RERUN:
        if any(get(old, k) != get(new, k) for k in keys):
            return step
    return "report"


@dataclass
class Runtime:
    """What the steps need that is not state: the database, the Lab's directory, settings."""

    engine: Engine
    lab_dir: Path
    settings: Any
    progress: Progress | None = None
    pause_at: str | None = field(default_factory=lambda: os.environ.get(PAUSE_ENV) or None)

    def emit(self, session_id: str) -> events.Emit:
        return events.emitter(self.engine, session_id)

    def pause(self, point: str, session_id: str) -> None:
        if self.pause_at != point:
            return
        print(
            f"omc lab: paused at {point} (session {session_id}, pid {os.getpid()})",
            file=sys.stderr,
            flush=True,
        )
        while True:  # until killed
            time.sleep(3600)


def _plan_of(state: LabState) -> ResearchPlan:
    return ResearchPlan.model_validate(state["plan"])


def step(rt: Runtime, name: str, body: Callable[[Runtime, LabState], dict[str, Any]]) -> Node:
    """`body` as a graph node: the session marked running at `name`, start/end events, the
    pause points, and a failure stored as `failed` with one line (`step: why`)."""

    def node(state: LabState) -> dict[str, Any]:
        sid = state["session"]
        emit = rt.emit(sid)
        store.save_session(rt.engine, sid, status="running", step=name)
        emit("step_start", {"step": name, "revision": state.get("revision", 0)})
        if rt.progress:
            rt.progress(name, 0, 1)
        rt.pause(name, sid)
        started = time.perf_counter()
        try:
            update = body(rt, state)
        except GraphBubbleUp:
            raise
        except Exception as exc:  # the study failed: stored with one clear line
            log.debug("Lab session %s failed at %s", sid, name, exc_info=True)
            error = f"{name}: {_one_line(exc)}"
            store.save_session(rt.engine, sid, status="failed", step=name, error=error)
            emit("error", {"step": name, "error": error})
            return {"status": "failed", "error": error}
        rt.pause(f"{name}:end", sid)
        emit("step_end", {"step": name, "seconds": round(time.perf_counter() - started, 3)})
        if rt.progress:
            rt.progress(name, 1, 1)
        return update

    node.__name__ = name
    return node


def plan(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.graph.planning import plan_step

    sid = state["session"]
    emit = rt.emit(sid)
    options = dict(state.get("options") or {})
    explicit_as_of = options.pop("as_of", None)
    base = state.get("base_plan")
    instructions = list(state.get("instructions") or [])
    words = [t for t in instructions if not t.lstrip().startswith("{")]
    result = plan_step(
        state["goal"],
        [*(state.get("answers") or []), *words],
        parse_utc(explicit_as_of) if explicit_as_of else None,
        rt.settings,
        rt.engine,
        emit,
        base_plan=ResearchPlan.model_validate(base) if base else None,
        options=options,
        session_id=sid,
    )
    if result.plan is None:
        question = result.question or "?"
        store.save_session(rt.engine, sid, status="asked", step="plan", question=question)
        emit("question", {"question": question})
        return {"question": question, "status": "asked"}
    new = result.plan
    body = new.model_dump(mode="json")
    for patch in (t for t in instructions if t.lstrip().startswith("{")):
        body = _merged(body, _json_object(patch))
    new = ResearchPlan.model_validate(body)
    notes = list(new.assumptions)
    if len(new.symbols) > 1:
        notes.append(f"studies the first symbol of the plan ({new.symbols[0]})")
    revision = state.get("revision", 0)
    if revision:
        notes.append(
            f"revision {revision}: {instructions[-1]!r} — asked after the sealed holdout was "
            "seen, so the holdout is flagged"
        )
    new = new.model_copy(
        update={"as_of": new.as_of or parse_utc(state["as_of"]), "assumptions": notes}
    )
    body = new.model_dump(mode="json")
    old = state.get("plan")
    start = rerun_from(old, body) if (revision and old and state.get("refs")) else "retrieve"
    store.save_session(
        rt.engine, sid, status="running", step="plan", plan=body, as_of=new.as_of, question=None
    )
    emit("plan", {"plan": body, "next": start})
    return {"plan": body, "question": None, "rerun_from": start, "status": "running"}


def _json_object(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"revision {text!r} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"revision {text!r} is not a JSON object of plan fields")
    return value


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        out[key] = (
            _merged(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def ask(rt: Runtime, state: LabState) -> dict[str, Any]:
    """The person answers the planner's question (nothing happens before the interrupt)."""
    reply = interrupt({"kind": "question", "question": state.get("question")})
    text = " ".join(str(reply).split())
    rt.emit(state["session"])("answer", {"question": state.get("question"), "answer": text})
    return {"answers": [*(state.get("answers") or []), text], "question": None}


def retrieve(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.features import load_inputs

    p = _plan_of(state)
    assert p.as_of is not None
    inputs = load_inputs(p, engine=rt.engine, as_of=p.as_of)
    if inputs.bars.empty:
        raise StudyError(f"no bars for {p.symbols[0]} as of {p.as_of.isoformat()}")
    store.save_session(rt.engine, state["session"], source=inputs.source)
    ref = stash(work_dir(rt.lab_dir, state["session"]), "inputs", inputs)
    return {"refs": {**(state.get("refs") or {}), "inputs": ref}, "source": inputs.source}


def features(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.evaluation import make_labels
    from omc.lab.features import FeatureSpec, build_matrix

    p, refs = _plan_of(state), state["refs"]
    inputs = unstash(refs["inputs"])
    spec = FeatureSpec.from_plan(p, inputs)
    value = {
        "spec": spec,
        "X": build_matrix(spec, inputs),
        "labels": make_labels(p.target, inputs.bars),
    }
    ref = stash(work_dir(rt.lab_dir, state["session"]), "features", value)
    return {"refs": {**refs, "features": ref}}


def check(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.features import run_checks

    p, refs = _plan_of(state), state["refs"]
    inputs, built = unstash(refs["inputs"]), unstash(refs["features"])
    X = built["X"]
    checks = run_checks(inputs, X, built["labels"]["y"], p, spec=built["spec"])
    refused = sorted({name for c in checks for name in getattr(c, "refused", []) or []})
    stops = [c for c in checks if c.status == "fail" and not getattr(c, "refused", None)]
    if stops:
        raise StudyError("; ".join(f"check {c.name} failed: {c.detail}" for c in stops))
    X = X.drop(columns=[c for c in refused if c in X.columns])
    if X.shape[1] == 0:
        raise StudyError("no features left after the leakage check")
    rt.emit(state["session"])(
        "checks", {"checks": {c.name: c.status for c in checks}, "refused": refused}
    )
    value = {"checks": checks, "X": X, "refused": refused}
    ref = stash(work_dir(rt.lab_dir, state["session"]), "check", value)
    return {"refs": {**refs, "check": ref}}


def train(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.training import run_search

    p, refs = _plan_of(state), state["refs"]
    X = unstash(refs["check"])["X"]
    y = unstash(refs["features"])["labels"]["y"]

    def searching(_label: str, done: int, total: int) -> None:
        if rt.progress:
            rt.progress("train", done, total)

    search = run_search(X, y, p, progress=searching)
    trials = [t.to_json() for t in search.trials]
    offset = state.get("trial_offset", 0)
    store.store_trials(rt.engine, state["session"], trials, offset=offset)
    rt.emit(state["session"])("trials", {"stored": len(trials), "first_number": offset})
    ref = stash(work_dir(rt.lab_dir, state["session"]), "search", search)
    return {"refs": {**refs, "search": ref}}


def evaluate(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.evaluation import evaluate as evaluate_search
    from omc.lab.session.runner import holdout_dataset

    p, refs, sid = _plan_of(state), state["refs"], state["session"]
    inputs, built = unstash(refs["inputs"]), unstash(refs["features"])
    X, search = unstash(refs["check"])["X"], unstash(refs["search"])
    dataset = holdout_dataset(inputs.source, inputs.bars, search.holdout_index, p)
    opened_before = store.open_holdout(rt.engine, sid, dataset)
    looks = opened_before + state.get("revision", 0)  # a revision has seen this holdout
    evaluation = evaluate_search(
        search, X, built["labels"], inputs.bars, p, holdout_opened_before=looks
    )
    result = evaluation.to_json()
    holdout = result.get("holdout", {})
    rt.emit(sid)(
        "holdout", {"opened_before": opened_before, "flagged": bool(holdout.get("flagged"))}
    )
    ref = stash(
        work_dir(rt.lab_dir, sid), "evaluation", {"result": result, "model": evaluation.model}
    )
    return {"refs": {**refs, "evaluation": ref}}


def report(rt: Runtime, state: LabState) -> dict[str, Any]:
    from omc.lab.graph.planning import llm_report
    from omc.lab.session.artifacts import write_artifacts
    from omc.lab.session.report import build_report, write_report

    p, refs, sid = _plan_of(state), state["refs"], state["session"]
    inputs, built = unstash(refs["inputs"]), unstash(refs["features"])
    checked, done = unstash(refs["check"]), unstash(refs["evaluation"])
    result, columns = done["result"], list(checked["X"].columns)
    folder = rt.lab_dir.resolve() / sid
    manifest = write_artifacts(
        folder,
        session_id=sid,
        plan=p,
        spec=built["spec"],
        features=columns,
        refused=checked["refused"],
        inputs=inputs,
        evaluation=result,
        model=done["model"],
    )
    document = build_report(
        session_id=sid,
        plan=p,
        inputs=inputs,
        checks=checked["checks"],
        features=columns,
        refused=checked["refused"],
        evaluation=result,
        manifest=manifest,
        llm=llm_report(rt, state, p, inputs.bars, checked["X"], built["labels"]["y"], result),
    )
    path = write_report(folder, document)
    verdict = result.get("verdict", {})
    trials = state.get("trial_offset", 0) + len(result.get("trials", []))
    summary = {
        "verdict": verdict.get("verdict"),
        "reasons": list(verdict.get("reasons", [])),
        "oos": dict(result.get("oos", {})),
        "baseline": _baseline_summary(result.get("baseline", {})),
        "trials": trials,
        "report": str(path),
        "holdout_flagged": bool(result.get("holdout", {}).get("flagged")),
    }
    store.save_session(
        rt.engine,
        sid,
        status="pending_approval",
        step="approval",
        verdict=summary["verdict"],
        reasons=summary["reasons"],
        oos=summary["oos"],
        baseline=summary["baseline"],
        n_trials=trials,
        report_path=str(path),
        artifact_dir=str(folder),
        artifact_hash=manifest["content_hash"],
        error=None,
    )
    rt.emit(sid)("report", {"verdict": summary["verdict"], "report": str(path)})
    return {"result": summary, "status": "pending_approval"}


def approval(rt: Runtime, state: LabState) -> dict[str, Any]:
    """The person decides: approve / reject (-> promote) or revise (-> plan again)."""
    result = state.get("result") or {}
    reply = interrupt(
        {"kind": "approval", "verdict": result.get("verdict"), "report": result.get("report")}
    )
    decision = dict(reply) if isinstance(reply, dict) else {"decision": str(reply)}
    rt.emit(state["session"])("decision", decision)
    if decision.get("decision") == "revise":
        text = str(decision.get("instructions") or "").strip()
        return {
            "instructions": [*(state.get("instructions") or []), text],
            "revision": state.get("revision", 0) + 1,
            "trial_offset": int(result.get("trials", 0)),
            "decision": None,
        }
    return {"decision": decision}


def promote(rt: Runtime, state: LabState) -> dict[str, Any]:
    decision = state.get("decision") or {}
    approval_state = "approved" if decision.get("decision") == "approve" else "rejected"
    store.save_session(rt.engine, state["session"], status="done", step=None)
    record = store.decide(
        rt.engine,
        state["session"],
        approval_state,
        reason=decision.get("reason"),
        force=bool(decision.get("force")),
    )
    rt.emit(state["session"])(
        "approval", {"approval": record.approval, "reason": record.decision_reason}
    )
    return {"status": "done"}
