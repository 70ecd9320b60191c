"""Lab studies over the API: the functions `omc lab run|show|approve|reject` call
(`omc.lab.session.runner`, `omc.lab.session.store`), with an owner per session
(`api_lab_owners`) and studies run as background jobs in the server.

`start` plans the goal against the stored candles (the API never reads server files): a goal
the planner must ask about is stored `asked` with its question (`answer` plans it again with
the answer and runs it under the same id); otherwise the session is stored `planned` and a
worker runs the study (`run_study`), whose steps are kept as the session's events (in
memory; the row's status and step are the truth). At start-up, sessions a previous server
left running are closed as interrupted (`close_abandoned`) and planned ones marked failed."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.orm import Session

from omc.api.models import LAB_OWNERS
from omc.core.config import Settings
from omc.core.masking import mask_text
from omc.core.time import parse_utc, utcnow

log = logging.getLogger("omc.api.lab")
NOT_STARTED = "interrupted: the server stopped before this study ran; start it again"


class NotAsked(ValueError):
    """Only a session the planner asked about takes an answer."""


@dataclass(frozen=True)
class LabEvent:
    seq: int
    ts: datetime
    step: str
    done: int
    total: int


class LabStudies:
    def __init__(self, engine: Engine, settings: Settings, workers: int = 1) -> None:
        self.engine = engine
        self.out_dir = settings.data_dir / "lab"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omc-lab")
        self._events: dict[str, list[LabEvent]] = {}
        self._lock = threading.Lock()

    def recover(self) -> None:
        from omc.lab.models import LabSession
        from omc.lab.session.store import close_abandoned, save_session

        close_abandoned(self.engine)
        t = LabSession.__table__
        with self.engine.connect() as conn:
            planned = list(conn.execute(select(t.c.id).where(t.c.status == "planned")).scalars())
        for sid in planned:
            if self.owner(sid) is not None:
                save_session(self.engine, sid, status="failed", error=NOT_STARTED)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ ownership
    def owner(self, session_id: str) -> int | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(LAB_OWNERS.c.owner_id).where(LAB_OWNERS.c.session_id == session_id)
            ).scalar()
        return None if found is None else int(found)

    def _own(self, owner_id: int, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                LAB_OWNERS.insert().values(
                    session_id=session_id, owner_id=owner_id, created_at=utcnow()
                )
            )

    def record(self, owner_id: int, session_id: str) -> Any:
        """The owner's session record, or None (unknown, or another user's)."""
        from omc.lab.session.store import UnknownSession, get_session

        if self.owner(session_id) != owner_id:
            return None
        try:
            return get_session(self.engine, session_id)
        except UnknownSession:
            return None

    def page(
        self, owner_id: int, *, limit: int, before: tuple[str, str] | None = None
    ) -> tuple[list[Any], bool]:
        """The owner's sessions newest first; and whether more follow."""
        from omc.lab.models import LabSession
        from omc.lab.session.store import SessionRecord

        query = select(LabSession).join(LAB_OWNERS, LAB_OWNERS.c.session_id == LabSession.id)
        query = query.where(LAB_OWNERS.c.owner_id == owner_id)
        if before is not None:
            when = parse_utc(before[0])
            query = query.where(
                or_(
                    LabSession.created_at < when,
                    and_(LabSession.created_at == when, LabSession.id < before[1]),
                )
            )
        query = query.order_by(LabSession.created_at.desc(), LabSession.id.desc())
        with Session(self.engine) as db:
            rows = [SessionRecord.of(r) for r in db.scalars(query.limit(limit + 1))]
        return rows[:limit], len(rows) > limit

    # ------------------------------------------------------------------ studies
    def _plan(self, goal: str, answer: str | None, options: dict[str, Any]) -> Any:
        from omc.lab.session.runner import prepare_plan

        return prepare_plan(goal, engine=self.engine, answer=answer, **options)

    def start(
        self, owner_id: int, goal: str, *, answer: str | None, options: dict[str, Any]
    ) -> tuple[str, str, str | None]:
        """(id, status, question) of a new study of `goal` (ValueError, one line, for options
        the plan cannot take)."""
        from omc.lab.session.runner import record_question
        from omc.lab.session.store import new_session_id, save_session

        result = self._plan(goal, answer, options)
        if result.plan is None:
            outcome = record_question(self.engine, goal, result.question or "?")
            self._own(owner_id, outcome.session)
            return outcome.session, "asked", outcome.question
        sid = new_session_id()
        save_session(self.engine, sid, goal=result.plan.goal, status="planned")
        self._own(owner_id, sid)
        self._submit(sid, result.plan)
        return sid, "planned", None

    def answer(self, record: Any, answer: str, options: dict[str, Any]) -> tuple[str, str | None]:
        """Plan an `asked` session again with `answer`: run it (status `planned`) or store
        the planner's next question (`asked`)."""
        from omc.lab.session.store import save_session

        if record.status != "asked":
            raise NotAsked(f"session {record.id} is {record.status}: nothing was asked")
        result = self._plan(record.goal, answer, options)
        if result.plan is None:
            save_session(self.engine, record.id, question=result.question or "?")
            return "asked", result.question
        save_session(self.engine, record.id, status="planned", question=None)
        self._submit(record.id, result.plan)
        return "planned", None

    def decide(self, record: Any, approval: str, reason: str | None, force: bool) -> Any:
        from omc.lab.session.store import decide

        return decide(self.engine, record.id, approval, reason=reason, force=force)

    def events(self, session_id: str, after: int = -1) -> list[LabEvent]:
        with self._lock:
            return [e for e in self._events.get(session_id, []) if e.seq > after]

    def report_file(self, record: Any) -> Path | None:
        """The session's report.html, when it is inside the Lab's directory and exists."""
        if not record.report_path:
            return None
        path = Path(record.report_path).resolve()
        root = self.out_dir.resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    def _submit(self, session_id: str, plan: Any) -> None:
        with self._lock:
            self._events[session_id] = []
        self._pool.submit(self._run, session_id, plan)

    def _run(self, session_id: str, plan: Any) -> None:
        from omc.lab.session.runner import run_study
        from omc.lab.session.store import save_session

        def progress(step: str, done: int, total: int) -> None:
            with self._lock:
                found = self._events.setdefault(session_id, [])
                found.append(LabEvent(len(found), utcnow(), step, done, total))

        try:
            run_study(
                plan,
                engine=self.engine,
                out_dir=self.out_dir,
                progress=progress,
                session_id=session_id,
            )
        except Exception as exc:  # run_study stores its own failures; this is a bug
            log.error("lab study %s crashed: %s", session_id, mask_text(repr(exc), 300))
            save_session(
                self.engine,
                session_id,
                status="failed",
                error=f"internal error ({type(exc).__name__})",
            )
