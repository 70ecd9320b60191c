"""Paper sessions on replayed candles, run by the server as background jobs (rows in
`api_paper_sessions`, threads in the server process).

`submit` checks the request (a registered strategy and its parameters, a timeframe; one
ValueError line otherwise), refuses an account that already runs a session or whose kill
switch is on (`Busy`), stores the session `queued` and hands it to the pool. A worker loads
the stored candles point-in-time, opens the account's paper session with the account's Guard
limits (`omc.floor.trading.limits.effective`) and replays the candles through
`TradingSession.replay` — the path `omc trade paper --replay` takes — at `bars_per_second`
(None: as fast as it can), so fills land in the journal as they happen. Progress (bars done
of total) is written about four times a second; `pause`, `resume` and `stop` act at the next
bar; a paused session keeps its lease and obeys the kill switch. The session's kill switch
stops it at its next bar (status `stopped`, the reason in `summary.stopped`).

The row is the truth: at start-up (`recover`) a session still `queued`, `running` or
`paused` was cut off by a stop of the server and is marked `failed` ("interrupted"); started
again on the same account it resumes from the journal."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from omc.api.jobs import json_safe
from omc.api.models import PAPER_SESSIONS
from omc.api.services.accounts import AccountRow
from omc.core.config import Settings
from omc.core.masking import mask_text
from omc.core.time import parse_utc, timeframe_seconds, utcnow

log = logging.getLogger("omc.api.paper")

ACTIVE = ("queued", "running", "paused")
INTERRUPTED = "interrupted: the server stopped while this session ran; start it again"
PROGRESS_EVERY_S = 0.25


class Busy(ValueError):
    """The account cannot start a session now (one runs, or its kill switch is on)."""


@dataclass(frozen=True)
class SessionView:
    id: str
    account: str
    status: str
    request: dict[str, Any]
    bars_done: int
    bars_total: int
    summary: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _view(r: Any) -> SessionView:
    return SessionView(
        r.id,
        r.account,
        r.status,
        r.request,
        r.bars_done,
        r.bars_total,
        r.summary,
        r.error,
        r.created_at,
        r.started_at,
        r.finished_at,
    )


def check_request(request: dict[str, Any]) -> None:
    from omc.floor.strategies import STRATEGIES, make_strategy

    if request["strategy"] not in STRATEGIES:
        raise ValueError(f"strategy: unknown {request['strategy']!r}; known: {sorted(STRATEGIES)}")
    try:
        timeframe_seconds(request["timeframe"])
    except ValueError as exc:
        raise ValueError(f"timeframe: {exc}") from None
    try:
        make_strategy(request["strategy"], request.get("params") or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params: {exc}") from None


class _Control:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.run = threading.Event()
        self.run.set()


class PaperSessions:
    def __init__(self, engine: Engine, settings: Settings, workers: int = 8) -> None:
        self.engine = engine
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omc-paper")
        self._controls: dict[str, _Control] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def recover(self) -> int:
        t = PAPER_SESSIONS
        with self.engine.begin() as conn:
            cut = conn.execute(
                update(t)
                .where(t.c.status.in_(ACTIVE))
                .values(status="failed", error=INTERRUPTED, finished_at=utcnow())
            ).rowcount
        return max(cut or 0, 0)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            for control in self._controls.values():
                control.stop.set()
                control.run.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ API
    def submit(self, owner_id: int, account: AccountRow, request: dict[str, Any]) -> str:
        from omc.floor.trading.guard import KillSwitchStore

        check_request(request)
        t = PAPER_SESSIONS
        if KillSwitchStore(self.engine, account=account.name).get().active:
            raise Busy(f"account {account.name!r}: the kill switch is on; switch it off first")
        session_id = secrets.token_hex(12)
        with self._lock:
            with self.engine.begin() as conn:
                busy = conn.execute(
                    select(t.c.id).where(t.c.account == account.name, t.c.status.in_(ACTIVE))
                ).first()
                if busy is not None:
                    raise Busy(f"account {account.name!r}: session {busy.id} is running")
                conn.execute(
                    t.insert().values(
                        id=session_id,
                        owner_id=owner_id,
                        account=account.name,
                        status="queued",
                        request=request,
                        bars_done=0,
                        bars_total=0,
                        created_at=utcnow(),
                    )
                )
            self._controls[session_id] = _Control()
        self._pool.submit(self._run, session_id, account)
        return session_id

    def get(self, owner_id: int, session_id: str) -> SessionView | None:
        t = PAPER_SESSIONS.c
        with self.engine.connect() as conn:
            r = conn.execute(
                select(PAPER_SESSIONS).where(t.id == session_id, t.owner_id == owner_id)
            ).first()
        return None if r is None else _view(r)

    def page(
        self,
        owner_id: int,
        *,
        limit: int,
        account: str | None = None,
        after: tuple[str, str] | None = None,
    ) -> tuple[list[SessionView], bool]:
        """The owner's sessions (of `account`), newest first; and whether more follow."""
        t = PAPER_SESSIONS.c
        query = select(PAPER_SESSIONS).where(t.owner_id == owner_id)
        if account is not None:
            query = query.where(t.account == account)
        if after is not None:
            when = parse_utc(after[0])
            query = query.where(
                or_(t.created_at < when, and_(t.created_at == when, t.id < after[1]))
            )
        query = query.order_by(t.created_at.desc(), t.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [_view(r) for r in conn.execute(query)]
        return rows[:limit], len(rows) > limit

    def control(self, owner_id: int, session_id: str, action: str) -> SessionView | None:
        """`pause`, `resume` or `stop` one of the owner's sessions (a no-op on a finished
        one); the session view after, None when it is not the owner's."""
        view = self.get(owner_id, session_id)
        if view is None:
            return None
        with self._lock:
            control = self._controls.get(session_id)
        if control is not None and view.status in ACTIVE:
            if action == "stop":
                control.stop.set()
                control.run.set()
            elif action == "pause":
                control.run.clear()
                self._set(session_id, "running", status="paused")
            elif action == "resume":
                control.run.set()
                self._set(session_id, "paused", status="running")
        return self.get(owner_id, session_id)

    def wait(self, session_id: str, timeout: float) -> None:
        """Until the session has finished, or `timeout` seconds (tests, the demo)."""
        deadline = time.monotonic() + timeout
        t = PAPER_SESSIONS.c
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                status = conn.execute(select(t.status).where(t.id == session_id)).scalar()
            if status not in ACTIVE:
                return
            time.sleep(0.05)

    # ------------------------------------------------------------------ worker
    def _set(self, session_id: str, when: str | None = None, **values: Any) -> None:
        """Update the session's row (only while its status is `when`, when given)."""
        t = PAPER_SESSIONS
        query = update(t).where(t.c.id == session_id)
        if when is not None:
            query = query.where(t.c.status == when)
        with self.engine.begin() as conn:
            conn.execute(query.values(**values))

    def _run(self, session_id: str, account: AccountRow) -> None:
        t = PAPER_SESSIONS
        with self._lock:
            control = self._controls.get(session_id) or _Control()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(t)
                .where(t.c.id == session_id, t.c.status == "queued")
                .values(status="running", started_at=utcnow())
            ).rowcount
            row = conn.execute(select(t.c.request).where(t.c.id == session_id)).first()
        try:
            if not claimed or row is None:
                return
            summary = self._replay(session_id, account, row.request, control)
            stopped = summary.get("stopped")
            status = "stopped" if stopped or control.stop.is_set() else "done"
            self._set(
                session_id, None, status=status, summary=json_safe(summary), finished_at=utcnow()
            )
        except Exception as exc:
            self._set(
                session_id, None, status="failed", error=self._reason(exc), finished_at=utcnow()
            )
        finally:
            with self._lock:
                self._controls.pop(session_id, None)

    def _replay(
        self, session_id: str, account: AccountRow, request: dict[str, Any], control: _Control
    ) -> dict[str, Any]:
        from omc.floor.data import load_db
        from omc.floor.strategies import make_strategy
        from omc.floor.trading.guard import GuardSettings
        from omc.floor.trading.limits import effective
        from omc.floor.trading.paper_session import open_paper_session, session_summary
        from omc.floor.venues.paper import PaperSettings, ReplayQuotes

        bars = load_db(self.engine, request["symbol"], request["timeframe"], request["exchange"])
        if not len(bars):
            raise LookupError(
                f"no {request['timeframe']} candles of {request['symbol']} on "
                f"{request['exchange']!r} stored"
            )
        if request.get("max_bars"):
            bars = bars.slice(0, int(request["max_bars"]))
        self._set(session_id, None, bars_total=len(bars))
        strategy = make_strategy(request["strategy"], request.get("params") or {})
        limits = effective(self.engine, account.name, GuardSettings().limits())
        quotes = ReplayQuotes()
        session = open_paper_session(
            self.engine,
            strategy,
            (bars.symbol,),
            quotes,
            account=account.name,
            settings=self.settings,
            limits=limits,
            paper=PaperSettings(),
            cash=account.cash,
        )
        bps = request.get("bars_per_second")
        speed = bars.bar_seconds * float(bps) if bps else None
        last = [0.0]

        def on_bar(i: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or i == len(bars) - 1:
                last[0] = now
                self._set(session_id, None, bars_done=i + 1)
            if not control.run.is_set():
                session.journal.flush()  # what happened so far is visible while paused
            while not control.run.is_set() and not control.stop.is_set():
                session.journal.heartbeat()  # keep the lease while paused
                if session.kill.get().active:
                    break  # the next bar acts on the kill switch
                control.run.wait(PROGRESS_EVERY_S)
            if control.stop.is_set() and not session.stopped:
                session.stopped = "stopped by its user"

        try:
            session.replay(
                bars, quotes, speed=speed, spread_bps=_dec(request.get("spread_bps")), on_bar=on_bar
            )
        finally:
            session.close()
        with self.engine.begin() as conn:
            conn.execute(
                update(PAPER_SESSIONS)
                .where(PAPER_SESSIONS.c.id == session_id)
                .values(bars_done=max(session.state.last_bar + 1, 0))
            )
        return session_summary(session)

    @staticmethod
    def _reason(exc: Exception) -> str:
        from omc.floor.trading.lease import JournalWriterError

        if isinstance(exc, LookupError | ValueError | JournalWriterError):
            text = str(exc).strip()
            return mask_text(text.splitlines()[0] if text else type(exc).__name__, 500)
        log.error("paper session crashed: %s", mask_text(repr(exc), 500))
        return f"internal error ({type(exc).__name__})"


def _dec(value: Any) -> Any:
    from decimal import Decimal

    return Decimal(str(value)) if value is not None else Decimal(0)
