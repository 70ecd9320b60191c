"""`omc trade paper|live`, `omc kill`, `omc pnl`, `omc positions`, `omc orders`.

Paper and live trading run a registered strategy, or your own (`--strategy file.py:Class`),
through the Guard and the order manager (`omc.floor.trading.session.TradingSession`); state
lives in the journal of an *account* (default `paper-<strategy>` / `<venue>-<strategy>`), so a
restarted command resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from omc.cli.context import (
    STRATEGY_HELP,
    console,
    engine,
    err_console,
    fail,
    guard_lines,
    not_negative,
    parse_params,
    positive_cash,
    settings,
)

SPEED_HELP = "Replay speed: bars arrive N× faster than real time, or `max`."


@contextmanager
def _one_writer() -> Iterator[None]:
    """Another process writes the account (its lease): one clear line, exit code 2."""
    from omc.floor.trading.lease import JournalWriterError

    try:
        yield
    except JournalWriterError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _bus() -> Any:
    from omc.core.events import make_bus

    return make_bus(settings())


@contextmanager
def _replay_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (never on stdout, which --json keeps for the summary)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda i: progress.update(task, completed=i + 1)


def _waiting(source: str, poll_s: float) -> Callable[[list[str]], None]:
    """Say on stderr what a session waits for — once, and again when that changes."""
    said: list[str] = []

    def on_wait(missing: list[str]) -> None:
        if missing:
            hint = " (`omc collect` stores them)" if source.startswith("ticks") else ""
            line = f"waiting for {source} for {', '.join(missing)}: none yet{hint}"
        else:
            line = f"waiting for the next quote (polling {source} every {poll_s:g} s)"
        if not said or said[-1] != line:
            said.append(line)
            err_console.print(line, soft_wrap=True, highlight=False, markup=False)

    return on_wait


def _speed(text: str) -> float | None:
    if text.lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"--speed {text!r}: a number or `max`") from None
    if value <= 0:
        raise typer.BadParameter("--speed must be positive")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _print_summary(summary: dict[str, Any], as_json: bool, title: str = "P&L") -> None:
    if as_json:
        console.print_json(json.dumps(_jsonable(summary)))
        return
    table = Table(title=f"{title} (method: {summary['method']})")
    table.add_column("")
    table.add_column("value", justify="right")
    for key in (
        "initial_cash",
        "cash",
        "equity",
        "realised_pnl",
        "unrealised_pnl",
        "fees",
        "net_pnl",
        "trades",
        "drawdown",
    ):
        value = summary[key]
        text = (
            f"{value:.2%}"
            if key == "drawdown"
            else (f"{value:,.2f}" if isinstance(value, Decimal) else str(value))
        )
        table.add_row(key.replace("_", " "), text)
    console.print(table)
    if summary["positions"]:
        _positions_table(summary["positions"])
    if "guard" in summary:
        for line in guard_lines(summary["guard"]):
            console.print(line)
    if summary.get("stopped"):
        console.print(f"Stopped: {summary['stopped']}")
    health = summary.get("health")
    if health:
        console.print(
            f"Book: stage {health['stage']}, health {health['status']} "
            f"({health['trades']} trade(s) in the stage, drawdown {health['drawdown']:.2%})"
        )


def _positions_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Positions")
    for col in ("strategy", "symbol", "quantity", "avg_cost", "mark", "value", "unrealised"):
        table.add_column(col, justify="left" if col in ("strategy", "symbol") else "right")
    for p in rows:
        table.add_row(
            p["strategy"],
            p["symbol"],
            str(p["quantity"]),
            f"{p['avg_cost']:,.6g}",
            f"{p['mark']:,.6g}",
            f"{p['value']:,.2f}",
            f"{p['unrealised']:,.2f}",
        )
    console.print(table)


def _accounts(account: str | None) -> list[str]:
    from omc.floor.trading.journal import accounts

    found = accounts(engine())
    if account is not None:
        if account not in found:
            raise typer.BadParameter(f"no journal for account {account!r}; known: {found}")
        return [account]
    return found


def register(app: typer.Typer) -> None:
    trade_app = typer.Typer(help="Paper and live trading.", no_args_is_help=True)
    app.add_typer(trade_app, name="trade")

    @trade_app.command("paper")
    @_one_writer()
    def paper(
        strategy: str = typer.Option(..., "--strategy", "-s", help=STRATEGY_HELP),
        param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter k=v."),
        replay: Path | None = typer.Option(None, "--replay", help="Candle CSV to replay."),
        speed: str = typer.Option("max", "--speed", help=SPEED_HELP),
        symbol: list[str] = typer.Option(
            [], "--symbol", help="Symbols to trade on ledger ticks (e.g. BTC/AUD)."
        ),
        account: str | None = typer.Option(None, "--account", help="Journal account name."),
        cash: str | None = typer.Option(None, "--cash", help="Starting cash (first run)."),
        spread_bps: Decimal = typer.Option(Decimal(0), "--spread-bps", help="Replay spread."),
        max_bars: int | None = typer.Option(None, "--max-bars", help="Stop after N bars."),
        poll_s: float = typer.Option(5.0, "--poll", help="Seconds between ledger polls."),
        as_json: bool = typer.Option(False, "--json", help="Print the P&L summary as JSON."),
    ) -> None:
        """Paper-trade a strategy on the ledger's latest quotes, or replay a candle file."""
        from omc.floor.data import load_csv
        from omc.floor.strategies import make_strategy
        from omc.floor.trading.guard import GuardSettings
        from omc.floor.trading.paper_session import (
            open_paper_session,
            replay_paper,
            session_summary,
        )
        from omc.floor.venues.paper import LedgerQuotes, PaperSettings

        starting = None if cash is None else positive_cash(cash)
        not_negative(spread_bps, "--spread-bps")
        try:
            strat = make_strategy(strategy, parse_params(param))
        except ValueError as exc:
            fail(str(exc))
        ps = PaperSettings()
        common: dict[str, Any] = {
            "account": account or f"paper-{strat.name}",
            "settings": settings(),
            "limits": GuardSettings().limits(),
            "paper": ps,
            "cash": starting,
            "bus": _bus(),  # trading-state moves: `floor.trading_state`
        }
        from omc.floor.book.guards import book_guard

        # the account's Guard, then the portfolio's (OMC_PORTFOLIO_*, the book's kill switch)
        common["guard"] = book_guard(
            engine(), common["account"], common["limits"], venue="paper", bus=common["bus"]
        )
        if replay is not None:
            bars = load_csv(replay)
            with _replay_progress(f"replay {bars.symbol}", len(bars)) as on_bar:
                summary = replay_paper(
                    engine(),
                    strat,
                    bars,
                    speed=_speed(speed),
                    spread_bps=spread_bps,
                    on_bar=on_bar,
                    **common,
                )
        else:
            if not symbol:
                raise typer.BadParameter("give --replay FILE or --symbol S (ledger ticks)")
            session = open_paper_session(
                engine(),
                strat,
                [s.upper() for s in symbol],
                LedgerQuotes(engine(), source=ps.quote_source),
                **common,
            )
            try:
                session.run_ticks(
                    poll_s=poll_s,
                    max_bars=max_bars,
                    on_wait=_waiting(f"ticks from {ps.quote_source}", poll_s),
                    stop=_watching(session, common["bus"]),
                )
            finally:
                session.close()
            summary = session_summary(session)
        _print_summary(summary, as_json, title=f"Paper P&L — {summary['account']}")

    @trade_app.command("live")
    @_one_writer()
    def live(
        venue_name: str = typer.Option(..., "--venue", help="coinspot or ccxt:<exchange id>."),
        strategy: str = typer.Option(..., "--strategy", "-s", help=STRATEGY_HELP),
        param: list[str] = typer.Option([], "--param", "-p"),
        symbol: list[str] = typer.Option(..., "--symbol", help="Symbols, e.g. BTC/AUD."),
        live_flag: bool = typer.Option(False, "--live", help="Required: really send orders."),
        account: str | None = typer.Option(None, "--account"),
        poll_s: float = typer.Option(5.0, "--poll"),
        max_bars: int | None = typer.Option(None, "--max-bars"),
        credential: str | None = typer.Option(
            None, "--credential", help="Trade with this stored credential of --user."
        ),
        user: str | None = typer.Option(
            None, "--user", help="Owner of --credential (a user of `omc users`)."
        ),
    ) -> None:
        """Trade live. Needs OMC_LIVE_TRADING=true, --live and explicit OMC_GUARD_* limits.
        The API key pair is the stored --credential of --user, or OMC_COINSPOT_API_* /
        OMC_CCXT_API_*."""
        from omc.floor.strategies import make_strategy
        from omc.floor.trading.guard import REQUIRED_FOR_LIVE, GuardSettings
        from omc.floor.trading.session import LiveSettings, TradingSession
        from omc.floor.venues.base import VenueError

        problems = []
        if not LiveSettings().live_trading:
            problems.append("the setting OMC_LIVE_TRADING is not true")
        if not live_flag:
            problems.append("the --live flag is missing")
        gs = GuardSettings()
        missing = gs.missing_for_live()
        if missing:
            names = ", ".join(f"OMC_GUARD_{m.upper()}" for m in missing)
            problems.append(f"Guard limits not configured: {names}")
        if problems:
            console.print("[red]Refusing to trade live:[/red] " + "; ".join(problems) + ".")
            console.print(f"(required Guard limits: {', '.join(REQUIRED_FOR_LIVE)})")
            raise typer.Exit(2)
        try:
            strat = make_strategy(strategy, parse_params(param))
        except ValueError as exc:
            fail(str(exc))
        if credential is not None or user is not None:
            named = account or f"{venue_name}-{strat.name}"
            venue = _stored_venue(venue_name, user, credential, f"trade live {named}")
        else:
            for problem in _missing_keys(venue_name):  # before anything is sent
                fail(f"Refusing to trade live: {problem}")
            venue = _live_venue(venue_name)
        from omc.floor.book.guards import book_guard
        from omc.floor.book.registry import trading

        trading(engine(), strat, account or f"{venue.name}-{strat.name}", venue=venue.name)
        bus = _bus()
        session = TradingSession(
            engine(),
            account or f"{venue.name}-{strat.name}",
            strat,
            tuple(s.upper() for s in symbol),
            venue,
            book_guard(
                engine(),
                account or f"{venue.name}-{strat.name}",
                gs.limits(),
                venue=venue.name,
                bus=bus,
            ),
            bus=bus,
        )
        try:
            try:
                session.start()
            except VenueError as exc:
                console.print(f"[red]Cannot start live trading:[/red] {exc}", soft_wrap=True)
                raise typer.Exit(1) from None
            if session.stopped:  # the start-up reconciliation found a difference
                line = f"[red]Not trading[/red] {session.account}: {session.stopped}"
                console.print(line, soft_wrap=True)
                raise typer.Exit(1)
            waiting = _waiting(f"quotes from {venue.name}", poll_s)
            stop = _watching(session, session.bus)
            session.run_ticks(poll_s=poll_s, max_bars=max_bars, on_wait=waiting, stop=stop)
        finally:
            session.close()
        _print_summary(session.state.book.summary(), False, title=f"Live P&L — {session.account}")

    @app.command("kill")
    def kill(
        clear: bool = typer.Option(False, "--clear", help="Switch the kill switch off."),
        flatten: bool = typer.Option(False, "--flatten", help="Also flatten positions."),
        reason: str = typer.Option("manual", "--reason"),
        as_json: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
        wait: float = typer.Option(
            30.0, "--wait", min=0, help="Seconds to wait for running sessions to confirm."
        ),
    ) -> None:
        """Kill switch: stop every strategy, cancel open orders now and, with --flatten,
        close positions (stored in the database: survives restarts). An account a running
        session writes is handled by that session (one writer per account): this waits up
        to --wait seconds for it to confirm."""
        from omc.floor.trading.guard import KillSwitchStore

        db = engine()
        store = KillSwitchStore(db)
        if clear:
            store.set(False, reason=f"cleared: {reason}")
            console.print("Kill switch [green]cleared[/green]: trading may resume.")
            return
        reports = _kill_accounts(db, store, flatten=flatten, reason=reason, wait_s=wait)
        if as_json:
            console.print_json(json.dumps(_jsonable(reports)))
            return
        console.print(
            "Kill switch [red]ON[/red]"
            + (" (flatten)" if flatten else "")
            + ": every order path is blocked; running sessions stop at their next bar."
            + " `omc kill --clear` to resume."
        )
        for r in reports:
            line = f"  {r['account']} ({r['venue']}): "
            if r.get("acknowledged") is not False:
                line += f"{r.get('cancelled', 0)} order(s) cancelled"
                if flatten:
                    line += f", {len(r.get('flattened', []))} position(s) flattened"
                if r.get("acknowledged"):
                    line += f" by its running session {r['session']}"
            if r.get("error"):
                sep = "" if r.get("acknowledged") is False else " — "
                line += f"[yellow]{sep}{r['error']}[/yellow]"
            console.print(line)

    @app.command("pnl")
    def pnl(
        account: str | None = typer.Option(None, "--account"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """P&L per account (realised by average cost, unrealised at the latest marks)."""
        from omc.floor.trading.journal import Journal

        out = {}
        for name in _accounts(account):
            summary = Journal.open(engine(), name).state.book.summary()
            if as_json:
                out[name] = summary
            else:
                _print_summary(summary, False, title=f"P&L — {name}")
                curve = Journal.open(engine(), name).state.book.breakdown()
                if curve:
                    table = Table(title="Realised by strategy / coin / day")
                    for col in ("day", "strategy", "symbol", "realised", "fees", "fills"):
                        table.add_column(col)
                    for r in curve:
                        table.add_row(
                            *(str(r[c]) for c in ("day", "strategy", "symbol")),
                            f"{r['realised']:,.2f}",
                            f"{r['fees']:,.2f}",
                            str(r["fills"]),
                        )
                    console.print(table)
        if as_json:
            console.print_json(json.dumps(_jsonable(out)))

    @app.command("positions")
    def positions(
        account: str | None = typer.Option(None, "--account"),
        as_json: bool = typer.Option(False, "--json", help="Print {account: [position]} JSON."),
    ) -> None:
        """Open positions per account."""
        from omc.floor.trading.journal import Journal

        out = {}
        for name in _accounts(account):
            rows = Journal.open(engine(), name).state.book.summary()["positions"]
            out[name] = rows
            if not as_json:
                console.print(f"[bold]{name}[/bold]: {len(rows)} position(s)")
                if rows:
                    _positions_table(rows)
        if as_json:
            print(json.dumps(_jsonable(out), indent=2))

    @app.command("orders")
    def orders(
        account: str | None = typer.Option(None, "--account"),
        all_orders: bool = typer.Option(False, "--all", help="Include final orders."),
        as_json: bool = typer.Option(False, "--json", help="Print {account: [order]} JSON."),
    ) -> None:
        """Open orders (or all orders) per account."""
        from omc.floor.trading.journal import Journal

        out: dict[str, list[dict[str, Any]]] = {}
        for name in _accounts(account):
            state = Journal.open(engine(), name).state
            rows = [o for o in state.orders.values() if all_orders or o.open]
            if as_json:
                out[name] = [_order_json(o) for o in rows]
                continue
            table = Table(title=f"Orders — {name}")
            for col in (
                "client id",
                "strategy",
                "symbol",
                "side",
                "qty",
                "state",
                "filled",
                "avg price",
                "fee",
            ):
                table.add_column(col)
            for o in rows:
                avg = o.average_price
                table.add_row(
                    o.client_order_id,
                    o.strategy,
                    o.symbol,
                    str(o.side),
                    str(o.quantity),
                    str(o.state),
                    str(o.filled),
                    f"{avg:,.6g}" if avg is not None else "–",
                    f"{o.fee:,.4f}",
                )
            console.print(table)
        if as_json:
            print(json.dumps(_jsonable(out), indent=2))


def _watching(session: Any, bus: Any) -> Callable[[], bool]:
    """The book's hook (event rules, demotion monitor) as run_ticks' `stop` (True once
    demoted)."""
    from omc.floor.trading.paper_session import book_hook, watch_session

    return book_hook(session, watch_session(engine(), session, settings=settings(), bus=bus))


def _order_json(o: Any) -> dict[str, Any]:
    """One journaled order for `omc orders --json` (decimals as strings, times ISO-8601)."""
    from omc.core.time import iso_utc

    return {
        "client_order_id": o.client_order_id,
        "venue_order_id": o.venue_order_id,
        "strategy": o.strategy,
        "symbol": o.symbol,
        "side": str(o.side),
        "type": str(o.type),
        "quantity": o.quantity,
        "limit_price": o.limit_price,
        "state": str(o.state),
        "open": o.open,
        "filled": o.filled,
        "average_price": o.average_price,
        "fee": o.fee,
        "reason": o.reason,
        "created": iso_utc(o.created) if o.created else None,
    }


def _kill_accounts(
    db: Any, store: Any, *, flatten: bool, reason: str, wait_s: float
) -> list[dict[str, Any]]:
    """Switch the kill switch on and cancel (and flatten) every journaled account now. One
    writer per account: an account a running session holds is left to that session (the
    switch is its command; we wait up to `wait_s` for it to confirm). The others are acted on
    here: paper accounts on their journal book, live accounts at their venue — every order
    working there, also ones the journal does not know — when it can be reached with the
    configured credentials (otherwise their session reacts when it runs)."""
    from omc.floor.trading.journal import Journal, accounts, last_event
    from omc.floor.trading.kill import kill_account, kill_or_command
    from omc.floor.venues.paper import LedgerQuotes, PaperSettings

    names = accounts(db)
    marks = {}
    for name in names:  # where each journal stood before the switch went on
        last = last_event(db, name)
        marks[name] = last.ordinal if last is not None else -1
    store.set(True, flatten=flatten, reason=reason)
    reports = []
    bus = _bus()
    for name in names:
        state = Journal.open(db, name).state
        venue_name = str((state.started or {}).get("venue", "paper"))

        def act(name: str = name, venue_name: str = venue_name) -> dict[str, Any]:
            if venue_name == "paper":
                ledger = LedgerQuotes(db, source=PaperSettings().quote_source) if flatten else None
                return kill_account(
                    db, name, reason=reason, flatten=flatten, kill=store, ledger=ledger, bus=bus
                )
            try:
                venue = _live_venue(venue_name)
            except Exception as exc:  # no credentials / unknown venue: the session will react
                return {
                    "account": name,
                    "venue": venue_name,
                    "error": f"venue not reachable: {exc}",
                }
            return kill_account(
                db, name, reason=reason, flatten=flatten, venue=venue, kill=store, bus=bus
            )

        reports.append(
            kill_or_command(db, name, act, venue=venue_name, after=marks[name], wait_s=wait_s)
        )
    return reports


def _missing_keys(venue: str) -> list[str]:
    """Why `venue` has no API key pair configured (checked before anything is sent)."""
    if venue == "coinspot":
        from omc.floor.venues.coinspot_signing import CoinSpotCredentials as creds
    elif venue.startswith("ccxt:"):
        from omc.floor.venues.ccxt_venue import CcxtCredentials as creds  # type: ignore[assignment]
    else:
        raise typer.BadParameter(f"--venue {venue!r}: coinspot or ccxt:<exchange id>")
    found = creds()
    if found.api_key and found.api_secret:
        return []
    prefix = str(creds.model_config.get("env_prefix", "")).upper()
    return [f"no API key pair for {venue} (set {prefix}API_KEY and {prefix}API_SECRET)"]


def _live_venue(name: str) -> Any:
    if name == "coinspot":
        from omc.floor.venues import coinspot  # the CoinSpot private API client

        return coinspot.CoinSpotVenue.from_settings(settings())
    if name.startswith("ccxt:"):
        from omc.floor.venues.ccxt_venue import CcxtVenue

        return CcxtVenue.from_settings(name.split(":", 1)[1], settings())
    raise typer.BadParameter(f"--venue {name!r}: coinspot or ccxt:<exchange id>")


def _stored_venue(venue_name: str, user: str | None, credential: str | None, purpose: str) -> Any:
    """The live venue with `user`'s stored credential (decrypted for this use, audited with
    `purpose`: which account trades with it)."""
    from omc.api import providers, vault
    from omc.api.auth.secret import SecretKeyError
    from omc.api.auth.users import find

    if user is None or credential is None:
        fail("--credential and --user go together: whose stored key to trade with")
    owner = find(engine(), user)
    if owner is None or owner.disabled:
        fail(f"no active user {user[:64]!r}")
    try:
        store = vault.Vault.from_settings(settings())
        found = vault.get(engine(), store, owner.id, credential)
        if found.kind != venue_name:
            fail(f"credential {credential!r} is a {found.kind} key, not one for {venue_name}")
        info, material = vault.use(engine(), store, owner, found.id, purpose)
        return providers.live_venue(info.kind, material, settings())
    except (vault.VaultError, SecretKeyError) as exc:
        fail(f"Refusing to trade live: {exc}")
