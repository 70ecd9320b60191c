"""`omc strategies list|show|add|promote|demote|retire`: the book's strategy registry.

Every strategy instance (a strategy with its parameters in one account) has a stage:
research → paper → live-small → live (→ retired). Paper trading registers its instance by
itself (stage `paper`); promotion checks the criteria of `omc.floor.book.promotion` and asks
a person to confirm a live stage; every change is recorded with who (`--by`, default the
login name) and why (`--reason`).
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from omc.cli.context import STRATEGY_HELP, console, engine, fail, parse_params, settings

BY_HELP = "Who makes the change (default: your login name)."


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return "unknown"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _entry(sid: str) -> Any:
    from omc.floor.book.registry import RegistryError, get

    try:
        return get(engine(), sid)
    except RegistryError as exc:
        fail(str(exc))


def _bars(data: list[Path]) -> Any:
    if not data:
        return None
    from omc.floor.data import load_csv

    try:
        loaded = [load_csv(p) for p in data]
    except (OSError, ValueError, KeyError) as exc:
        fail(f"--data: {exc}")
    return {b.symbol: b for b in loaded}


def _table(rows: list[Any]) -> None:
    table = Table(title="Strategies")
    for col in ("id", "name", "account", "stage", "since", "version", "origin"):
        table.add_column(col)
    colours = {"live": "green", "live-small": "green", "paper": "cyan", "retired": "dim"}
    for e in rows:
        colour = colours.get(e.stage, "yellow")
        table.add_row(
            e.id,
            e.name,
            e.account,
            f"[{colour}]{e.stage}[/]",
            e.stage_since.strftime("%Y-%m-%d %H:%M"),
            e.version,
            str(e.origin.get("kind", "")),
        )
    console.print(table)


def _health_text(h: Any) -> str:
    """One line of a strategy's health (`omc.floor.book.monitor.Monitor.health`)."""
    status = str(h.get("status", "?"))
    if status not in ("ok", "breach", "unwatched"):
        return status
    colour = {"ok": "green", "breach": "red"}.get(status, "yellow")
    text = f"[{colour}]{status}[/] ({h['trades']} trade(s), drawdown {h['drawdown']:.2%}"
    if h.get("drawdown_limit") is not None:
        text += f" of {h['drawdown_limit']:.2%}"
    if h.get("cusum_h"):
        text += f", CUSUM {h['cusum']:.2f} of {h['cusum_h']:.2f}"
    text += ")"
    if h.get("breach"):
        text += f": {h['breach']['detail']}"
    return text


def register(app: typer.Typer) -> None:
    book = typer.Typer(
        help="The book: registered strategies and their stages.", no_args_is_help=True
    )
    app.add_typer(book, name="strategies")

    @book.command("list")
    def list_(
        account: str | None = typer.Option(None, "--account", help="Only this account."),
        stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    ) -> None:
        """Every registered strategy instance and its stage."""
        from omc.floor.book.registry import STAGES, entries

        if stage is not None and stage not in STAGES:
            fail(f"--stage {stage!r}: one of {', '.join(STAGES)}")
        rows = entries(engine(), account=account, stage=stage)
        if as_json:
            _print_json([e.as_dict() for e in rows])
        elif rows:
            _table(rows)
        else:
            console.print("no registered strategies (paper trading registers them)")

    @book.command("show")
    def show(
        sid: str = typer.Argument(..., help="Strategy id (or a unique prefix)."),
        data: list[Path] = typer.Option(
            [], "--data", help="Candle CSV for the divergence check; default: the ledger."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """One strategy: stage, expectations, evidence in its stage, what promotion needs,
        and its history."""
        from omc.floor.book.promotion import NEXT, criteria, divergence_check, evidence
        from omc.floor.book.registry import history

        e = _entry(sid)
        db = engine()
        checks = criteria(db, e, divergence=divergence_check(db, _bars(data)))
        from omc.floor.book.watch import health_of

        doc = e.as_dict() | {
            "health": dict(health_of(db, e)),
            "evidence": evidence(db, e).as_dict(),
            "next_stage": NEXT.get(e.stage),
            "criteria": [c.as_dict() for c in checks],
            "history": history(db, e.id),
        }
        if as_json:
            _print_json(doc)
            return
        console.print(f"[bold]{e.id}[/] {e.name} in {e.account}: [bold]{e.stage}[/]")
        console.print(f"  params {json.dumps(e.params)}  version {e.version}")
        console.print(f"  origin {json.dumps(e.origin, default=str)}")
        console.print(f"  expectations {json.dumps(e.expectations, default=str) or 'none'}")
        ev = doc["evidence"]
        console.print(
            f"  in {e.stage} since {doc['stage_since']}: {ev['days']:.1f} day(s), "
            f"{ev['trades']} trade(s), {ev['breaches']} limit breach(es)"
        )
        console.print(f"  health {_health_text(doc['health'])}")
        if doc["next_stage"]:
            console.print(f"  to {doc['next_stage']}:")
            for c in checks:
                mark = "[green]ok[/]" if c.ok else "[red]not yet[/]"
                console.print(f"    {mark} {c.name}: {c.detail}", soft_wrap=True)
        for h in doc["history"]:
            move = f"{h['from'] or '·'} → {h['to']}" if h["to"] else h["kind"]
            console.print(f"  {h['ts']} {h['kind']} {move} by {h['by']}: {h['reason']}")

    @book.command("check")
    def check(
        data: list[Path] = typer.Option(
            [], "--data", help="Candle CSV: also judge divergence from each one's backtest."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Report only; demote nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """The demotion monitor, once over every paper and live strategy: drawdown, returns
        (CUSUM), Guard denials (and divergence with --data); a breach demotes and alerts."""
        from omc.cli.trade import _bus
        from omc.floor.book.promotion import divergence_check
        from omc.floor.book.watch import Alerts, check_book
        from omc.ledgers.catalyst.notifiers import notifiers_from_settings

        db = engine()
        alerts = Alerts(_bus(), notifiers_from_settings(settings()))
        bars = _bars(data)
        rows = check_book(
            db,
            alerts=alerts,
            divergence=divergence_check(db, bars) if bars else None,
            demote_breaches=not dry_run,
        )
        alerts.wait()
        if as_json:
            _print_json(rows)
            return
        if not rows:
            console.print("no paper or live strategies to check")
        for row in rows:
            moved = f" → demoted to {row['demoted_to']}" if "demoted_to" in row else ""
            line = f"{row['id']} {row['name']} ({row['account']}, {row['stage']}): "
            console.print(line + _health_text(row) + moved, soft_wrap=True)

    @book.command("halt-book")
    def halt_book(
        reason: str = typer.Option("manual", "--reason", help="Why (stored with the switch)."),
        clear: bool = typer.Option(False, "--clear", help="Switch the book's kill switch off."),
    ) -> None:
        """The book's kill switch: every account's new entries are denied by the portfolio
        Guard (orders that reduce positions still pass) until --clear."""
        from omc.floor.book.guards import BOOK_SCOPE
        from omc.floor.trading.guard import KillSwitchStore

        store = KillSwitchStore(engine(), scope=BOOK_SCOPE)
        store.set(not clear, reason=reason)
        state = "[green]off[/]" if clear else "[red]ON[/]: no new entries in any account"
        console.print(f"book kill switch {state} ({reason})")

    @book.command("add")
    def add(
        strategy: str = typer.Option(..., "--strategy", "-s", help=STRATEGY_HELP),
        param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter k=v."),
        account: str | None = typer.Option(None, "--account", help="Its journal account."),
        expect_from: Path | None = typer.Option(
            None, "--expect-from", help="Candle CSV: its backtest there sets the expectations."
        ),
        reason: str = typer.Option("registered", "--reason", help="Why."),
        by: str | None = typer.Option(None, "--by", help=BY_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the entry as JSON."),
    ) -> None:
        """Register a strategy instance (stage research); with --expect-from, its backtest on
        that (out-of-sample) candle file becomes its expectations."""
        from omc.floor.book.registry import register as add_entry
        from omc.floor.book.registry import set_expectations
        from omc.floor.strategies import make_strategy

        try:
            strat = make_strategy(strategy, parse_params(param))
        except ValueError as exc:
            fail(str(exc))
        who = _who(by)
        expect = None
        origin = {"kind": "manual"}
        if expect_from is not None:
            from omc.floor.backtest.engine import run_backtest
            from omc.floor.book.expectations import from_backtest
            from omc.floor.data import load_csv

            result = run_backtest(strat, load_csv(expect_from))
            expect = from_backtest(result, source=f"backtest {expect_from.name}")
            origin = {"kind": "backtest", "file": str(expect_from)}
        db = engine()
        e = add_entry(
            db,
            strat,
            account or f"paper-{strat.name}",
            origin=origin,
            expectations=expect,
            actor=who,
            reason=reason,
        )
        if expect is not None and e.expectations != expect:
            e = set_expectations(db, e.id, expect, actor=who, reason=reason)
        if as_json:
            _print_json(e.as_dict())
        else:
            console.print(f"registered [bold]{e.id}[/] {e.name} in {e.account}: {e.stage}")

    @book.command("promote")
    def promote(
        sid: str = typer.Argument(..., help="Strategy id (or a unique prefix)."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
        by: str | None = typer.Option(None, "--by", help=BY_HELP),
        confirm: bool = typer.Option(
            False, "--confirm", help="A person confirms a live stage (else: type the id)."
        ),
        data: list[Path] = typer.Option(
            [], "--data", help="Candle CSV for the divergence check; default: the ledger."
        ),
    ) -> None:
        """Move a strategy one stage up when its criteria are met (live stages: confirmed)."""
        from omc.floor.book import promotion as p
        from omc.floor.book.registry import LIVE_STAGES

        e = _entry(sid)
        db = engine()
        to = p.NEXT.get(e.stage)
        confirmed = confirm
        check = p.divergence_check(db, _bars(data))
        if to in LIVE_STAGES and not confirm:
            unmet = [c for c in p.criteria(db, e, divergence=check) if not c.ok]
            if not unmet and sys.stdin.isatty():
                typed = typer.prompt(f"Promote {e.id} ({e.name}) to {to}? Type its id to confirm")
                confirmed = typed.strip() == e.id
        try:
            after = p.promote(
                db, e.id, actor=_who(by), reason=reason, confirmed=confirmed, divergence=check
            )
        except p.RegistryError as exc:
            fail(str(exc), 1)
        console.print(f"{after.id} {after.name}: {e.stage} → [bold]{after.stage}[/]")

    @book.command("demote")
    def demote(
        sid: str = typer.Argument(..., help="Strategy id (or a unique prefix)."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
        to: str | None = typer.Option(None, "--to", help="A lower stage (default: one down)."),
        by: str | None = typer.Option(None, "--by", help=BY_HELP),
    ) -> None:
        """Move a strategy one stage down (or to a lower stage)."""
        from omc.floor.book import promotion as p

        e = _entry(sid)
        try:
            after = p.demote(engine(), e.id, actor=_who(by), reason=reason, to=to)
        except p.RegistryError as exc:
            fail(str(exc))
        console.print(f"{after.id} {after.name}: {e.stage} → [bold]{after.stage}[/]")

    @book.command("retire")
    def retire(
        sid: str = typer.Argument(..., help="Strategy id (or a unique prefix)."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
        by: str | None = typer.Option(None, "--by", help=BY_HELP),
    ) -> None:
        """Retire a strategy for good."""
        from omc.floor.book import promotion as p

        e = _entry(sid)
        try:
            after = p.retire(engine(), e.id, actor=_who(by), reason=reason)
        except p.RegistryError as exc:
            fail(str(exc))
        console.print(f"{after.id} {after.name}: {e.stage} → [bold]{after.stage}[/]")
