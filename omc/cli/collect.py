"""`omc collect` (the scheduler, or one run with --once) and `omc status` (collector health,
ledgers, and each trading account's state: active / reducing / halted)."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from omc.cli.context import console, engine, err_console, settings
from omc.core.time import iso_utc

SHUTDOWN_GRACE_S = 5.0  # how long Ctrl-C / SIGTERM waits for runs in flight to return


def register(app: typer.Typer) -> None:
    @app.command("collect")
    def collect(
        once: str | None = typer.Option(
            None, "--once", metavar="SOURCE", help="Run one collection of SOURCE and exit."
        ),
        sources: str | None = typer.Option(
            None, help="Comma-separated sources to schedule (default: all)."
        ),
    ) -> None:
        """Collect data: every collector on its interval until Ctrl-C, or one run with --once."""
        from omc.core.events import make_bus
        from omc.ledgers.catalyst.alerts import AlertEngine
        from omc.ledgers.collectors import registry
        from omc.ledgers.collectors.base import CollectorRunner
        from omc.ledgers.collectors.scheduler import CollectorScheduler, terminate_as_exit
        from omc.ledgers.exchange.tick_candles import build_tick_candles

        bus = make_bus(settings())
        # listings raise alerts as soon as their run is stored (and go to the notifiers)
        AlertEngine.from_settings(engine(), bus, settings()).attach()
        runner = CollectorRunner(engine(), bus)
        if once:
            try:
                collector = registry.build(once, settings())
            except ValueError as exc:
                err_console.print(f"[red]{exc}[/]")
                raise typer.Exit(2) from exc
            runner.close_abandoned()
            try:
                with terminate_as_exit():
                    summary = runner.run(collector)
            except (KeyboardInterrupt, SystemExit) as exc:
                err_console.print(f"[yellow]{once}: interrupted[/] (recorded as interrupted)")
                raise typer.Exit(143 if isinstance(exc, SystemExit) else 130) from None
            finally:
                collector.close()
            colour = {"ok": "green", "partial": "yellow", "interrupted": "yellow"}.get(
                summary.status, "red"
            )
            console.print(
                f"[{colour}]{summary.collector}: {summary.status}[/] fetched={summary.fetched} "
                f"inserted={summary.inserted} updated={summary.updated} "
                f"duplicates={summary.duplicates} quarantined={summary.quarantined}"
                + (f"\n  error: {summary.error}" if summary.error else "")
            )
            raise typer.Exit(0 if summary.status != "failed" else 1)
        config = settings()
        requested = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
        scheduler = CollectorScheduler(runner)
        started = []
        for name in requested or registry.available():
            try:
                scheduler.add_collector(registry.build(name, config))
                started.append(name)
            except ValueError as exc:  # unknown source, or settings it needs are missing
                if requested:
                    err_console.print(f"[red]{exc}[/]")
                    raise typer.Exit(2) from exc
                err_console.print(f"[yellow]not collecting {name}:[/] {exc}")
        if not started:
            err_console.print("[red]no collector can run with the current settings[/]")
            raise typer.Exit(2)
        db = engine()
        scheduler.add_job(
            "candles:ticks",
            lambda: build_tick_candles(db, config.tick_candle_timeframes),
            interval_s=60,
        )
        console.print(
            f"collecting {', '.join(started)}; candles from ticks every 60 s — Ctrl-C to stop"
        )
        scheduler.start()
        if not runner.wait_idle(SHUTDOWN_GRACE_S):
            # runs still waiting on the network are already recorded as interrupted and will
            # store nothing: do not wait for their timeouts
            err_console.print(
                f"[yellow]runs still in flight after {SHUTDOWN_GRACE_S:g} s were recorded as "
                "interrupted; exiting[/]"
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    @app.command("status")
    def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Collector health (last success, freshness, errors, quarantine), ledger row counts,
        the trading state of every account and each strategy's stage and health."""
        from omc.floor.book.watch import book_status
        from omc.floor.trading.guard import KillSwitchStore
        from omc.floor.trading.modes import trading_states
        from omc.ledgers.status import ledger_status

        report = ledger_status(engine(), settings())
        kill = KillSwitchStore(engine()).get()
        report["kill_switch"] = {
            "active": kill.active,
            "flatten": kill.flatten,
            "reason": kill.reason,
            "since": kill.updated_at,
        }
        report["trading"] = trading_states(engine())
        report["strategies"] = book_status(engine())
        report["queue"] = _queue_report()
        if as_json:
            print(json.dumps(report, indent=2, default=_json_default))
            return
        table = Table(title="collectors")
        for column in (
            "collector",
            "state",
            "last success",
            "age",
            "interval",
            "runs 24h",
            "error rate",
            "quarantined",
            "last error",
        ):
            table.add_column(column)
        for row in report["collectors"]:
            colour = {"fresh": "green", "stale": "yellow", "degraded": "yellow"}.get(
                row["state"], "red"
            )
            table.add_row(
                row["collector"],
                f"[{colour}]{row['state']}[/]",
                str(row["last_success"] or "never"),
                "" if row["age_s"] is None else f"{row['age_s']:.0f}s",
                f"{row['interval_s']:.0f}s",
                str(row["runs_24h"]),
                f"{row['error_rate_24h']:.0%}",
                str(row["quarantined"]),
                (row["last_error"] or "")[:60],
            )
        console.print(table)
        tables = Table(title="ledgers")
        for column in ("ledger", "table", "rows", "first", "last"):
            tables.add_column(column)
        for row in report["tables"]:
            tables.add_row(
                row["ledger"],
                row["table"],
                str(row["rows"]),
                str(row["first"] or ""),
                str(row["last"] or ""),
            )
        console.print(tables)
        if report["gaps"]:
            gaps = Table(title="gaps")
            for column in ("series", "missing", "largest gap", "at"):
                gaps.add_column(column)
            for row in report["gaps"]:
                gaps.add_row(row["series"], str(row["missing"]), row["largest"], str(row["at"]))
            console.print(gaps)
        _print_quality(report["quality"])
        _print_trading(report["trading"], report["kill_switch"])
        _print_strategies(report["strategies"])
        _print_queue(report["queue"])


def _print_strategies(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    console.print("[bold]strategies[/] (stage and health, `omc strategies show ID`)")
    for r in rows:
        colour = {"ok": "green", "breach": "red"}.get(str(r["health"]), "yellow")
        trades = f", {r['trades']} trade(s) in the stage" if r.get("trades") is not None else ""
        why = f": {r['breach']}" if r.get("breach") else ""
        console.print(
            f"  {r['id']} {r['name']} ({r['account']}): {r['stage']}, "
            f"[{colour}]{r['health']}[/]{trades}{why}",
            soft_wrap=True,
        )


def _queue_report() -> dict[str, Any]:
    """The queue's jobs per status and its dead letters (newest first)."""
    from omc.ops.queue.journal import counts, dead_letters

    jobs: dict[str, int] = {}
    for (_kind, status), n in counts(engine()).items():
        jobs[status] = jobs.get(status, 0) + n
    letters = [
        {"id": d.id, "kind": d.kind, "slot": d.slot_key, "attempts": d.attempts,
         "error": d.error, "at": d.finished_at}
        for d in dead_letters(engine(), limit=10)
    ]  # fmt: skip
    return {"jobs": jobs, "dead_letters": letters}


def _print_queue(queue: dict[str, Any]) -> None:
    if not queue["jobs"]:
        return  # no job ever went through the queue (the single-process default)
    counts = ", ".join(f"{status} {n}" for status, n in sorted(queue["jobs"].items()))
    console.print(f"[bold]queue jobs[/]: {counts}", highlight=False)
    letters = queue["dead_letters"]
    if not letters:
        console.print("dead letters: [green]none[/]")
        return
    console.print(f"dead letters: [red]{queue['jobs'].get('dead', len(letters))}[/] (newest first)")
    for letter in letters:
        what = letter["slot"] or f"{letter['kind']} {letter['id']}"
        console.print(
            f"  {what}: {letter['attempts']} attempts — {letter['error'] or ''}", highlight=False
        )


def _print_trading(rows: list[dict[str, Any]], kill: dict[str, Any]) -> None:
    since = f" since {iso_utc(kill['since'])}" if kill["since"] else ""
    if kill["active"]:
        how = " (flatten)" if kill["flatten"] else ""
        why = f": {kill['reason']}" if kill["reason"] else ""
        console.print(
            f"kill switch: [red]ON[/]{how}{why}{since} — no account trades until `omc kill --clear`"
        )
    else:
        console.print(f"kill switch: [green]off[/]{since}")
    if not rows:
        console.print("trading accounts: none")
        return
    console.print("[bold]trading state[/] (of each account's last session)")
    for row in rows:
        colour = {"active": "green", "reducing": "yellow"}.get(row["state"], "red")
        since = f" since {iso_utc(row['since'])}" if row["since"] else ""
        why = f" ({row['reason']})" if row["reason"] else ""
        blocked = kill["active"] and row["state"] != "halted"
        blocked_text = " — blocked by the kill switch" if blocked else ""
        console.print(f"  {row['account']}: [{colour}]{row['state']}[/]{why}{since}{blocked_text}")


def _print_quality(quality: dict[str, Any]) -> None:
    from omc.ledgers.quality import Z_LIMIT

    volume = Table(title="collection volume (24 h)")
    for column in (
        "collector",
        "runs",
        "expected",
        "items fetched",
        "written",
        "duplicates",
        "unfinished",
    ):
        volume.add_column(column, justify="left" if column == "collector" else "right")
    for row in quality["volume"]:
        volume.add_row(
            row["collector"],
            str(row["runs_24h"]),
            "" if row["expected_runs_24h"] is None else str(row["expected_runs_24h"]),
            f"{row['fetched_24h']:,}",
            f"{row['written_24h']:,}",
            f"{row['duplicate_rate_24h']:.0%}",
            str(row["unfinished_runs"]),
        )
    console.print(volume)
    nulls = [row for row in quality["null_rates"] if row["null_rate"] > 0]
    if nulls:
        table = Table(title="null key fields")
        for column in ("table", "field", "rows", "null rate"):
            table.add_column(column)
        for row in nulls:
            table.add_row(row["table"], row["field"], f"{row['rows']:,}", f"{row['null_rate']:.1%}")
        console.print(table)
    else:
        console.print("null key fields: none")
    if quality["anomalies"]:
        table = Table(title=f"anomalies (|z| > {Z_LIMIT:g})")
        for column in ("series", "measure", "z", "at"):
            table.add_column(column)
        for row in quality["anomalies"]:
            table.add_row(row["series"], row["measure"], f"{row['z']:+.1f}", str(row["at"]))
        console.print(table)
    else:
        console.print("anomalies: none")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)
