"""`omc lab …`: the Lab from the command line — run a study from a goal in words (or a plan
file) through the Lab's graph, list and show sessions, approve or reject a study's model;
`omc.cli.lab_flow` adds answer, revise, resume and events.

`omc lab run` exit codes: 0 the study ran (whatever its verdict; it waits at the approval
gate, status `pending_approval`), 1 the study failed (the one-line error is stored with the
session), 2 a usage mistake (missing file, bad --as-of, bad plan JSON), 3 the planner asked a
question and no answer could be prompted for (non-interactive or --json; the session is
stored as `asked`: `omc lab answer ID TEXT`, or re-run with --answer TEXT).
With --json the last line printed is one JSON object (see `StudyOutcome.to_json`).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omc.cli.context import (
    console,
    engine,
    err_console,
    fail,
    settings,  # noqa: F401  (looked up here by lab_flow; tests patch it)
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

EXIT_FAILED = 1
EXIT_ASKED = 3
MAX_QUESTIONS = 3


def _db() -> Engine:
    """The database, with sessions a killed process left `running` closed as `interrupted`."""
    from omc.lab.session.store import close_abandoned

    db = engine()
    close_abandoned(db)
    return db


lab_app = typer.Typer(help="The Lab: research a goal, read the report, approve or reject.")


def _interactive(as_json: bool) -> bool:
    """Whether a planner question can be asked at a prompt (a terminal, not --json)."""
    return not as_json and sys.stdin.isatty()


def _echo_json(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, default=str))


def _parse_as_of(text: str | None) -> datetime | None:
    from omc.core.time import parse_utc

    if text is None:
        return None
    try:
        return parse_utc(text)
    except ValueError:
        fail(f"--as-of {text!r} is not an ISO-8601 time (e.g. 2026-12-01T00:00Z)")


def _load_plan(path: Path) -> Any:
    from pydantic import ValidationError

    from omc.lab.plan import ResearchPlan

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"--plan {path}: {exc.strerror or exc}")
    try:
        return ResearchPlan.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "plan"
        fail(f"--plan {path}: {where}: {first.get('msg')} ({exc.error_count()} error(s))")


def _study_progress(json_mode: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console if json_mode else console,
        transient=json_mode,
    )


def _print_outcome(outcome: Any) -> None:
    table = Table(title=f"Lab session {outcome.session}: {outcome.status}")
    table.add_column("")
    table.add_column("value", justify="right")
    oos = outcome.to_json()["oos"]
    verdict = outcome.verdict or "–"
    style = "green" if verdict == "edge" else "red"
    table.add_row("verdict", f"[{style}]{verdict}[/]")
    for key, value in oos.items():
        table.add_row(f"OOS {key}", "–" if value is None else f"{value:.3f}")
    for name, base in outcome.baseline.items():
        auc = base.get("auc")
        table.add_row(f"baseline {name} AUC", "–" if auc is None else f"{auc:.3f}")
    table.add_row("trials", str(outcome.trials))
    console.print(table)
    for reason in outcome.reasons:
        console.print(f"  • {reason}", highlight=False)
    if outcome.report:
        console.print(f"report: [bold]{Path(outcome.report).resolve().as_uri()}[/]")
        console.print(
            f"decide: omc lab approve {outcome.session}  |  "
            f"omc lab reject {outcome.session} --reason TEXT  |  "
            f"omc lab revise {outcome.session} TEXT",
            highlight=False,
        )


def _done(outcome: Any, as_json: bool) -> NoReturn:
    if as_json:
        _echo_json(outcome.to_json())
    elif outcome.status == "asked":
        err_console.print(
            f"[yellow]question:[/] {outcome.question}\n"
            f"(session {outcome.session} stored as asked; answer with "
            f"`omc lab answer {outcome.session} TEXT`, or re-run with --answer TEXT)",
            highlight=False,
        )
    elif outcome.status == "failed":
        err_console.print(f"[red]error:[/] {outcome.error}", soft_wrap=True, highlight=False)
        console.print(f"session {outcome.session} stored as failed", highlight=False)
    else:
        _print_outcome(outcome)
    code = {"done": 0, "pending_approval": 0, "asked": EXIT_ASKED}.get(outcome.status, EXIT_FAILED)
    raise typer.Exit(code)


def _ask_until_planned(outcome: Any, as_json: bool) -> Any:
    """At a terminal, prompt for the planner's questions (at most MAX_QUESTIONS)."""
    from omc.cli.lab_flow import drive
    from omc.lab.graph import driver

    for _ in range(MAX_QUESTIONS):
        if outcome.status != "asked" or not _interactive(as_json):
            break
        reply = typer.prompt(outcome.question or "?")
        outcome = drive(driver.answer, as_json, outcome.session, reply)
    return outcome


@lab_app.command("run")
def run(
    goal: str | None = typer.Argument(None, help="The research goal, in words."),
    symbol: str | None = typer.Option(None, "--symbol", help="Symbol (e.g. BTC/USDT)."),
    timeframe: str | None = typer.Option(None, "--timeframe", help="Candle timeframe (5m)."),
    exchange: str | None = typer.Option(None, "--exchange", help="Exchange of the candles."),
    data: Path | None = typer.Option(
        None, "--data", help="Candles CSV (timestamp,open,high,low,close,volume)."
    ),
    horizon: int | None = typer.Option(None, "--horizon", min=1, help="Horizon in bars."),
    trials: int | None = typer.Option(None, "--trials", min=1, help="Search trial budget."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Point-in-time cut (ISO-8601; default: when the session starts)."
    ),
    answer: str | None = typer.Option(
        None, "--answer", help="Answer to the planner's question (several: 'ETH; binance 1h')."
    ),
    plan_file: Path | None = typer.Option(None, "--plan", help="A plan JSON file to run."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON object."),
) -> None:
    """Plan and run a study through the Lab's graph; write its report; wait for approval."""
    from omc.cli.lab_flow import drive
    from omc.lab.graph import driver

    when = _parse_as_of(as_of)
    if data is not None and not data.is_file():
        fail(f"--data {data}: no such file")
    if plan_file is None and not (goal and goal.strip()):
        fail("give a GOAL in words or --plan FILE")
    options: dict[str, Any] = {
        "symbol": symbol,
        "timeframe": timeframe,
        "exchange": exchange,
        "data_file": str(data.resolve()) if data is not None else None,
        "horizon_bars": horizon,
        "trials": trials,
        "as_of": when.isoformat() if when else None,
    }
    base = _load_plan(plan_file) if plan_file is not None else None
    text = goal.strip() if goal else (base.goal if base is not None else "")
    outcome = drive(
        driver.start,
        as_json,
        text,
        options=options,
        base_plan=base.model_dump(mode="json") if base is not None else None,
        answers=[answer] if answer else [],
    )
    outcome = _ask_until_planned(outcome, as_json)
    if outcome.status == "failed" and (outcome.error or "").startswith("plan: "):
        why = outcome.error.removeprefix("plan: ")  # options the planner cannot take,
        llm = why.startswith("llm ") and not why.startswith("llm config_error")
        fail(why, code=EXIT_FAILED if llm else 2)  # or the LLM failed (a run that stopped)
    _done(outcome, as_json)


def _fmt(value: Any, pattern: str = "{:.3f}") -> str:
    return "–" if value is None else pattern.format(value)


@lab_app.command("sessions")
def sessions(
    limit: int = typer.Option(50, "--limit", min=1, help="Newest N sessions."),
    as_json: bool = typer.Option(False, "--json", help="Print the sessions as JSON."),
) -> None:
    """The stored Lab sessions, newest first."""
    from omc.lab.session.runner import outcome_of
    from omc.lab.session.store import list_sessions

    records = list_sessions(_db(), limit)
    if as_json:
        _echo_json(
            {
                "sessions": [
                    {
                        **outcome_of(r).to_json(),
                        "goal": r.goal,
                        "approval": r.approval,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in records
                ]
            }
        )
        return
    table = Table(title="Lab sessions")
    for column in ("session", "created", "status", "verdict", "OOS AUC", "DSR p", "trials"):
        table.add_column(column)
    table.add_column("approval")
    table.add_column("goal", overflow="fold")
    for r in records:
        table.add_row(
            r.id,
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.status,
            r.verdict or "–",
            _fmt(r.oos.get("auc")),
            _fmt(r.oos.get("deflated_sharpe_probability")),
            str(r.n_trials),
            r.approval,
            r.goal,
        )
    console.print(table)
    if not records:
        console.print('no sessions yet: omc lab run "GOAL" --data FILE', highlight=False)


def _record(session_id: str) -> Any:
    from omc.lab.session.store import UnknownSession, get_session

    try:
        return get_session(_db(), session_id)
    except UnknownSession as exc:
        fail(str(exc))


@lab_app.command("show")
def show(
    session_id: str = typer.Argument(..., metavar="ID", help="Session id (omc lab sessions)."),
    as_json: bool = typer.Option(False, "--json", help="Print the session as JSON."),
    with_events: bool = typer.Option(False, "--events", help="Also its event log."),
) -> None:
    """One session: its goal, plan, verdict, metrics, trials and report (and events)."""
    from omc.lab.session import events
    from omc.lab.session.store import trials_of

    r = _record(session_id)
    trials = trials_of(engine(), r.id)
    if as_json:
        body = {k: v for k, v in vars(r).items()}
        log = [e.to_json() for e in events.read(engine(), r.id)] if with_events else None
        _echo_json({**body, "trials": trials, **({"events": log} if with_events else {})})
        return
    table = Table(title=f"Lab session {r.id}", show_header=False)
    table.add_column("")
    table.add_column("", overflow="fold")
    rows = [
        ("goal", r.goal),
        ("status", r.status + (f" (at {r.step})" if r.step else "")),
        ("created", r.created_at.isoformat()),
        ("as of", r.as_of.isoformat() if r.as_of else "–"),
        ("data", r.source or "–"),
        ("verdict", r.verdict or "–"),
        *((f"OOS {k}", _fmt(v)) for k, v in r.oos.items() if isinstance(v, float)),
        ("trials", str(r.n_trials)),
        ("report", Path(r.report_path).resolve().as_uri() if r.report_path else "–"),
        ("artifact hash", r.artifact_hash or "–"),
        ("approval", r.approval + (f" at {r.decided_at.isoformat()}" if r.decided_at else "")),
    ]
    if r.decision_reason:
        rows.append(("reason", r.decision_reason))
    if r.question:
        rows.append(("question", r.question))
    if r.error:
        rows.append(("error", r.error))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table, highlight=False)
    for reason in r.reasons:
        console.print(f"  • {reason}", highlight=False)
    if trials:
        best = sorted(trials, key=lambda t: -(t["score"] or 0.0))[:10]
        t = Table(title=f"trials (best {len(best)} of {len(trials)}, OOS mean fold AUC)")
        for column in ("#", "model", "score", "seconds", "params"):
            t.add_column(column)
        for trial in best:
            t.add_row(
                str(trial["number"]),
                trial["model"],
                _fmt(trial["score"], "{:.4f}"),
                _fmt(trial["seconds"], "{:.2f}"),
                json.dumps(trial["params"], sort_keys=True),
            )
        console.print(t, highlight=False)
    if with_events:
        from omc.cli.lab_flow import show_events

        show_events(r.id, 0, False)


def _decide(session_id: str, approval: str, reason: str | None, force: bool, as_json: bool) -> None:
    """At the approval gate the graph goes on (and ends); otherwise (a session decided before,
    or run before the graph) the decision is stored directly, with the same rules."""
    from omc.cli.lab_flow import drive
    from omc.lab.graph import driver
    from omc.lab.session.store import decide, get_session

    outcome = drive(driver.decide, True, session_id, approval, reason=reason, force=force)
    if outcome is None:
        drive(lambda rt: decide(rt.engine, session_id, approval, reason=reason, force=force), True)
    record = get_session(engine(), session_id)
    if as_json:
        _echo_json(
            {
                "session": record.id,
                "approval": record.approval,
                "verdict": record.verdict,
                "reason": record.decision_reason,
                "decided_at": record.decided_at.isoformat() if record.decided_at else None,
            }
        )
        return
    console.print(
        f"session {record.id} ({record.verdict}): {record.approval}"
        + (f" — {record.decision_reason}" if record.decision_reason else ""),
        highlight=False,
    )
    if record.approval == "approved":  # the Floor resolves it (omc.cli.lab_wiring)
        console.print(
            f"strategy model:{record.id} — omc backtest --data FILE --strategy model:{record.id}"
            f"  |  omc trade paper --strategy model:{record.id} --replay FILE",
            highlight=False,
        )


@lab_app.command("approve")
def approve(
    session_id: str = typer.Argument(..., metavar="ID"),
    force: bool = typer.Option(False, "--force", help="Approve a no_edge study (needs --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (stored with the decision)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve a finished study's model (refused for `no_edge` unless --force --reason)."""
    _decide(session_id, "approved", reason, force, as_json)


@lab_app.command("reject")
def reject(
    session_id: str = typer.Argument(..., metavar="ID"),
    reason: str = typer.Option(..., "--reason", help="Why (stored with the decision)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reject a study's model, with the reason."""
    _decide(session_id, "rejected", reason, False, as_json)


def register(app: typer.Typer) -> None:
    from omc.cli import lab_flow

    lab_flow.register(lab_app)
    app.add_typer(lab_app, name="lab")
