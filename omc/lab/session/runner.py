"""`run_study`: one Lab study end to end, from a plan to a stored, reported verdict.

Steps, in order (each reported to `progress` and timed): inputs (point-in-time data as of
the session start unless the plan says otherwise) -> matrix (the feature spec's matrix) ->
labels -> checks (coverage, sample size, class balance, leakage: refused features are
dropped and named) -> search (every trial kept) -> evaluate (the sealed holdout opened once,
its opening recorded; a second look at the same holdout is flagged) -> artifacts -> report ->
store. A failing step stores the session as `failed` with one clear error (`step: why`)
and returns it; nothing is raised for a study that fails on its data.

A goal the planner cannot plan without asking is stored as `asked` with its question
(`record_question`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from omc.core.time import utcnow
from omc.lab.plan import PlanResult, ResearchPlan
from omc.lab.session import store
from omc.lab.session.artifacts import write_artifacts
from omc.lab.session.report import build_report, write_report

STEPS = (
    "inputs",
    "matrix",
    "labels",
    "checks",
    "search",
    "evaluate",
    "artifacts",
    "report",
    "store",
)
log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
"""progress(step, done, total): a step starting (0, 1), its own work (search: trials done of
the budget) and its end (total, total)."""


class StudyError(Exception):
    """A study cannot go on (a failed data check, no usable rows, ...): the message says why."""


@dataclass
class StudyOutcome:
    """What a session ended with; `to_json()` is the object `omc lab run --json` prints."""

    session: str
    status: str
    goal: str
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    oos: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    report: Path | None = None
    question: str | None = None
    error: str | None = None
    holdout_flagged: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        oos = self.oos
        return {
            "session": self.session,
            "status": self.status,
            "verdict": self.verdict,
            "oos": {
                key: oos.get(key)
                for key in (
                    "auc",
                    "accuracy",
                    "sharpe",
                    "deflated_sharpe",
                    "deflated_sharpe_probability",
                )
            },
            "baseline": self.baseline,
            "trials": self.trials,
            "report": str(self.report) if self.report else None,
            "question": self.question,
            "reasons": self.reasons,
            "holdout_flagged": self.holdout_flagged,
            "error": self.error,
        }


def apply_overrides(
    plan: ResearchPlan,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    exchange: str | None = None,
    data_file: str | None = None,
    horizon_bars: int | None = None,
    trials: int | None = None,
    as_of: datetime | None = None,
) -> ResearchPlan:
    """`plan` with the CLI's explicit options applied (validated again), each one that
    changes the plan listed as an assumption."""
    body = plan.model_dump()
    notes: list[str] = []
    if symbol and body["symbols"][0] != symbol:
        body["symbols"] = [symbol, *(s for s in body["symbols"] if s != symbol)]
        notes.append(f"--symbol {symbol} is studied instead of the plan file's symbol")
    for key, value in (
        ("timeframe", timeframe),
        ("exchange", exchange),
        ("data_file", data_file),
        ("trials", trials),
        ("as_of", as_of),
    ):
        if value is not None and body[key] != value:
            flag = {"data_file": "data", "as_of": "as-of"}.get(key, key)
            notes.append(f"--{flag} {value} replaces the plan file's {body[key]}")
            body[key] = value
    if horizon_bars is not None and body["target"]["horizon_bars"] != horizon_bars:
        notes.append(f"--horizon {horizon_bars} replaces the plan file's horizon")
        body["target"]["horizon_bars"] = horizon_bars
    body["assumptions"] = [*body["assumptions"], *notes]
    return ResearchPlan.model_validate(body)


def prepare_plan(
    goal: str,
    *,
    engine: Engine | None,
    plan: ResearchPlan | None = None,
    answer: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    exchange: str | None = None,
    data_file: str | None = None,
    horizon_bars: int | None = None,
    trials: int | None = None,
    as_of: datetime | None = None,
) -> PlanResult:
    """The plan to run: `plan` (a file) with the explicit options applied, or the planner's
    plan of `goal` against the catalog (the candles file, else the database) — or its one
    question. The planner applies the explicit options itself (and says what they overrode).
    Raises ValueError (one line) for options or a file the plan cannot take."""
    options: dict[str, Any] = {
        "symbol": symbol,
        "timeframe": timeframe,
        "exchange": exchange,
        "data_file": data_file,
        "trials": trials,
        "as_of": as_of,
    }
    if plan is not None:
        return PlanResult(plan=apply_overrides(plan, horizon_bars=horizon_bars, **options))
    from omc.lab.catalog import catalog_for
    from omc.lab.planner import plan_goal

    catalog = catalog_for(engine, data_file=data_file, symbol=symbol, as_of=as_of)
    return plan_goal(goal, catalog, horizon=horizon_bars, answer=answer, **options)


def record_question(engine: Engine, goal: str, question: str) -> StudyOutcome:
    """Store a goal the planner asked about (status `asked`) and return it."""
    session_id = store.new_session_id()
    store.save_session(engine, session_id, goal=goal, status="asked", question=question)
    return StudyOutcome(session=session_id, status="asked", goal=goal, question=question)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (
        text
        if isinstance(exc, StudyError | LookupError | ValueError | OSError)
        else (f"{type(exc).__name__}: {text}")
    )


def _baseline_summary(baseline: dict[str, Any]) -> dict[str, Any]:
    keys = ("auc", "accuracy", "sharpe", "total_return")
    return {
        name: {k: v.get(k) for k in keys if k in v}
        for name, v in baseline.items()
        if isinstance(v, dict)
    }


def holdout_dataset(source: str, bars: pd.DataFrame, holdout: pd.Index, plan: ResearchPlan) -> str:
    """The sealed holdout's identity: data source, the bars' window, the holdout range and a
    digest of the holdout bars' values (a rewritten file is other data), and the target whose
    labels the holdout scores."""
    first, last = bars.index[0].isoformat(), bars.index[-1].isoformat()
    span = f"{holdout[0].isoformat()}..{holdout[-1].isoformat()}" if len(holdout) else "empty"
    values = bars.loc[holdout, ["open", "high", "low", "close", "volume"]].to_numpy("float64")
    digest = hashlib.sha256(values.tobytes()).hexdigest()[:16]
    target = f"{plan.target.kind}:{plan.target.horizon_bars}:{plan.target.threshold}"
    return (
        f"{source}|{plan.symbols[0]}|{plan.timeframe}|{first}..{last}|"
        f"holdout {span} #{digest}|{target}"
    )


def run_study(
    plan: ResearchPlan,
    *,
    engine: Engine,
    out_dir: Path,
    progress: Progress | None = None,
    session_id: str | None = None,
) -> StudyOutcome:
    """Run the study of `plan` (module docstring). `out_dir` is the Lab's directory
    (`<data_dir>/lab`); the session's files go to `out_dir/<ID>/`."""
    from omc.lab.evaluation import evaluate, make_labels
    from omc.lab.features import FeatureSpec, build_matrix, load_inputs, run_checks
    from omc.lab.training import run_search

    started = utcnow()
    session_id = session_id or store.new_session_id(started)
    as_of: datetime = plan.as_of or started
    plan = plan.model_copy(update={"as_of": as_of})
    if len(plan.symbols) > 1:
        note = f"studies the first symbol of the plan ({plan.symbols[0]})"
        if note not in plan.assumptions:
            plan = plan.model_copy(update={"assumptions": [*plan.assumptions, note]})
    store.save_session(
        engine,
        session_id,
        goal=plan.goal,
        status="running",
        step="inputs",
        as_of=as_of,
        plan=plan.model_dump(mode="json"),
    )
    outcome = StudyOutcome(session=session_id, status="running", goal=plan.goal)
    folder = out_dir.resolve() / session_id
    step = "inputs"
    clock = time.perf_counter()

    def begin(name: str) -> None:
        nonlocal step, clock
        now = time.perf_counter()
        outcome.timings[step] = outcome.timings.get(step, 0.0) + now - clock
        step, clock = name, now
        if progress:
            progress(name, 0, 1)

    try:
        if progress:
            progress("inputs", 0, 1)
        inputs = load_inputs(plan, engine=engine, as_of=as_of)
        if inputs.bars.empty:
            raise StudyError(f"no bars for {plan.symbols[0]} as of {as_of.isoformat()}")
        store.save_session(engine, session_id, source=inputs.source)
        begin("matrix")
        spec = FeatureSpec.from_plan(plan, inputs)
        X = build_matrix(spec, inputs)
        begin("labels")
        labels = make_labels(plan.target, inputs.bars)
        begin("checks")
        checks = run_checks(inputs, X, labels["y"], plan, spec=spec)
        refused = sorted({name for c in checks for name in getattr(c, "refused", []) or []})
        stops = [c for c in checks if c.status == "fail" and not getattr(c, "refused", None)]
        if stops:
            raise StudyError("; ".join(f"check {c.name} failed: {c.detail}" for c in stops))
        X = X.drop(columns=[c for c in refused if c in X.columns])
        if X.shape[1] == 0:
            raise StudyError("no features left after the leakage check")

        def searching(_label: str, done: int, total: int) -> None:
            if progress:
                progress("search", done, total)

        begin("search")
        search = run_search(X, labels["y"], plan, progress=searching)
        begin("evaluate")
        dataset = holdout_dataset(inputs.source, inputs.bars, search.holdout_index, plan)
        opened_before = store.open_holdout(engine, session_id, dataset)
        evaluation = evaluate(
            search, X, labels, inputs.bars, plan, holdout_opened_before=opened_before
        )
        result = evaluation.to_json()
        begin("artifacts")
        manifest = write_artifacts(
            folder,
            session_id=session_id,
            plan=plan,
            spec=spec,
            features=list(X.columns),
            refused=refused,
            inputs=inputs,
            evaluation=result,
            model=evaluation.model,
        )
        begin("report")
        document = build_report(
            session_id=session_id,
            plan=plan,
            inputs=inputs,
            checks=checks,
            features=list(X.columns),
            refused=refused,
            evaluation=result,
            manifest=manifest,
        )
        report_path = write_report(folder, document)
        begin("store")
        verdict = result.get("verdict", {})
        outcome.verdict = verdict.get("verdict")
        outcome.reasons = list(verdict.get("reasons", []))
        outcome.oos = dict(result.get("oos", {}))
        outcome.baseline = _baseline_summary(result.get("baseline", {}))
        outcome.trials = len(result.get("trials", []))
        outcome.report = report_path
        outcome.holdout_flagged = bool(result.get("holdout", {}).get("flagged"))
        store.store_trials(engine, session_id, result.get("trials", []))
        store.save_session(
            engine,
            session_id,
            status="done",
            step=None,
            verdict=outcome.verdict,
            reasons=outcome.reasons,
            oos=outcome.oos,
            baseline=outcome.baseline,
            n_trials=outcome.trials,
            report_path=str(report_path),
            artifact_dir=str(folder),
            artifact_hash=manifest["content_hash"],
        )
        outcome.status = "done"
    except Exception as exc:  # the study failed: stored with one clear line, never raised
        log.debug("Lab session %s failed at %s", session_id, step, exc_info=True)
        outcome.status = "failed"
        outcome.error = f"{step}: {_one_line(exc)}"
        store.save_session(engine, session_id, status="failed", step=step, error=outcome.error)
    outcome.timings[step] = outcome.timings.get(step, 0.0) + time.perf_counter() - clock
    if progress and outcome.status == "done":
        progress("store", 1, 1)
    return outcome


def outcome_of(record: store.SessionRecord) -> StudyOutcome:
    """A stored session as the `--json` object's outcome."""
    return StudyOutcome(
        session=record.id,
        status=record.status,
        goal=record.goal,
        verdict=record.verdict,
        reasons=record.reasons,
        oos=record.oos,
        baseline=record.baseline,
        trials=record.n_trials,
        report=Path(record.report_path) if record.report_path else None,
        question=record.question,
        error=record.error,
    )
