"""`omc lab answer|revise|resume|events`: the person's side of the Lab's graph — answer the
planner's question, send a study back with instructions, continue a session after a crash,
and read a session's event log. `drive` runs any graph call (`omc.lab.graph.driver`) under
the progress bars with one-line errors; `omc lab run|approve|reject` use it too.

Exit codes as `omc lab run`: 0 the study ran (waiting at the approval gate, or decided),
1 it failed or the request was refused (another process runs it), 2 a usage mistake (unknown
session, nothing to answer / revise / resume), 3 the planner asked (another) question.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from omc.cli import lab as lab_cli
from omc.cli.context import console, fail

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy import Engine

RUN_STEPS = ("plan", "retrieve", "features", "check", "train", "evaluate", "report")


def runtime(db: Engine, bars: Progress | None = None) -> Any:
    """The graph's runtime on `db` and the data dir, its progress shown on `bars`."""
    from omc.lab.graph.nodes import Runtime

    config = lab_cli.settings()
    if bars is None:
        return Runtime(db, config.data_dir / "lab", config)
    steps = bars.add_task("starting", total=len(RUN_STEPS))
    search = bars.add_task("search trials", total=1, visible=False)

    def progress(step: str, done: int, total: int) -> None:
        if step not in RUN_STEPS:
            return
        if step == "train" and total > 1:
            bars.update(search, visible=True, completed=done, total=total)
        elif done == 0:
            bars.update(steps, description=step, completed=RUN_STEPS.index(step))
        elif step == RUN_STEPS[-1]:
            bars.update(steps, description="done", completed=len(RUN_STEPS))

    return Runtime(db, config.data_dir / "lab", config, progress=progress)


def drive(call: Any, as_json: bool, *args: Any, **kwargs: Any) -> Any:
    """`call(runtime, *args, **kwargs)` under the progress bars; its refusals as one line."""
    from omc.lab.graph.driver import NotPaused, SessionBusy
    from omc.lab.session.store import ApprovalRefused, UnknownSession

    try:
        with lab_cli._study_progress(as_json) as bars:
            return call(runtime(lab_cli._db(), bars), *args, **kwargs)
    except (UnknownSession, NotPaused) as exc:
        fail(" ".join(str(exc).split()))
    except (SessionBusy, ApprovalRefused) as exc:
        fail(f"refused: {exc}", code=lab_cli.EXIT_FAILED)
    except ValueError as exc:
        fail(" ".join(str(exc).split()))


def answer(
    session_id: str = typer.Argument(..., metavar="ID"),
    text: str = typer.Argument(..., metavar="TEXT", help="The answer, in words."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON object."),
) -> None:
    """Answer the planner's question; the study runs on to the approval gate."""
    from omc.lab.graph import driver

    outcome = drive(driver.answer, as_json, session_id, text)
    lab_cli._done(lab_cli._ask_until_planned(outcome, as_json), as_json)


def revise(
    session_id: str = typer.Argument(..., metavar="ID"),
    instructions: str = typer.Argument(
        ...,
        metavar="TEXT",
        help="Words for the planner, or plan fields as JSON: '{\"trials\": 10}'",
    ),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON object."),
) -> None:
    """Send a study at the approval gate back: re-planned with TEXT and re-run from the first
    step the change touches (its sealed holdout is then flagged as seen)."""
    from omc.lab.graph import driver

    outcome = drive(driver.revise, as_json, session_id, instructions)
    lab_cli._done(lab_cli._ask_until_planned(outcome, as_json), as_json)


def resume(
    session_id: str = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON object."),
) -> None:
    """Continue a session from its last checkpoint (after a crash, a kill or a restart)."""
    from omc.lab.graph import driver

    outcome = drive(driver.resume, as_json, session_id)
    lab_cli._done(lab_cli._ask_until_planned(outcome, as_json), as_json)


def show_events(session_id: str, after: int, as_json: bool) -> None:
    from omc.lab.session import events

    record = lab_cli._record(session_id)
    log = events.read(lab_cli.engine(), record.id, after_seq=after)
    if as_json:
        lab_cli._echo_json({"session": record.id, "events": [e.to_json() for e in log]})
        return
    table = Table(title=f"Lab session {record.id}: events")
    for column in ("seq", "at", "kind"):
        table.add_column(column)
    table.add_column("payload", overflow="fold")
    for e in log:
        body = json.dumps(e.payload, sort_keys=True, default=str)
        table.add_row(str(e.seq), e.at.strftime("%H:%M:%S.%f")[:-3], e.kind, body[:300])
    console.print(table, highlight=False)


def events_command(
    session_id: str = typer.Argument(..., metavar="ID"),
    after: int = typer.Option(0, "--after", min=0, help="Only events after this seq."),
    as_json: bool = typer.Option(False, "--json", help="Print the events as JSON."),
) -> None:
    """A session's event log (append-only): steps, plan, questions, answers, decisions."""
    show_events(session_id, after, as_json)


def register(app: typer.Typer) -> None:
    app.command("answer")(answer)
    app.command("revise")(revise)
    app.command("resume")(resume)
    app.command("events")(events_command)
