"""Lab studies over the API: the Lab's graph (`omc.lab.graph.driver`: start, answer,
decide, revise, resume — what `omc lab` calls), with an owner per session (`api_lab_owners`)
and each graph call run as a background job in the server.

`start` stores the session `planned` and runs its graph until its first pause (the
planner's question, the approval gate) or its end; `answer` and `revise` check that the
session waits for that, then run it on. The graph plans against the stored candles (the API
never reads server files). Decisions at the gate run synchronously (the graph's last steps),
as `omc lab approve|reject` do. The session's event log (`omc.lab.session.events`) is what
`/events` and the stream show. At start-up the server resumes the studies it was running
when it stopped (`driver.resume`, from their last checkpoint)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    """The session is not waiting for this (no open question, not at the approval gate)."""


class LabStudies:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        workers: int = 1,
        owner_settings: Callable[[int], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.owner_settings = owner_settings  # a study's settings for its owner (their LLM key)
        self.out_dir = settings.data_dir / "lab"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omc-lab")
        self._lock = threading.Lock()

    def runtime(self, session_id: str | None = None) -> Any:
        """The graph's runtime; for a session's run, with its owner's settings (the Lab's
        LLM uses the owner's stored key: `omc.api.owner_llm`)."""
        from omc.lab.graph.nodes import Runtime

        settings: Any = self.settings
        owner = self.owner(session_id) if session_id and self.owner_settings else None
        if owner is not None and self.owner_settings is not None:
            settings = self.owner_settings(owner)
        return Runtime(self.engine, self.out_dir, settings)

    def recover(self) -> None:
        """Resume the owned studies a stopped server was running (from their checkpoint)."""
        from omc.lab.models import LabSession
        from omc.lab.session.store import close_abandoned

        close_abandoned(self.engine)
        t = LabSession.__table__
        with self.engine.connect() as conn:
            cut = list(
                conn.execute(
                    select(t.c.id)
                    .join(LAB_OWNERS, LAB_OWNERS.c.session_id == t.c.id)
                    .where(t.c.status.in_(("interrupted", "planned")))
                ).scalars()
            )
        for sid in cut:
            self._submit(sid, functools.partial(_resume, session_id=sid))

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

    # ------------------------------------------------------------------ the graph
    def start(
        self, owner_id: int, goal: str, *, answers: list[str], options: dict[str, Any]
    ) -> str:
        """A new study of `goal`, stored `planned` and run in the background."""
        from omc.lab.graph import driver
        from omc.lab.session.store import new_session_id, save_session

        sid = new_session_id()
        save_session(self.engine, sid, goal=goal, status="planned")
        self._own(owner_id, sid)
        opts = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in options.items()}
        self._submit(
            sid, lambda rt: driver.start(rt, goal, options=opts, answers=answers, session_id=sid)
        )
        return sid

    def _waiting(self, session_id: str, kind: str, what: str) -> None:
        """NotAsked unless the session waits for `kind`; then it is `planned` again (it runs
        on in the background) so a reader sees it move at once."""
        from omc.lab.graph import driver
        from omc.lab.session.store import save_session

        if driver.pending(self.runtime(), session_id).kind != kind:
            raise NotAsked(f"session {session_id} is not waiting for {what}")
        save_session(self.engine, session_id, status="planned")

    def answer(self, session_id: str, text: str) -> None:
        """Answer the question the session waits on; it runs on in the background."""
        from omc.lab.graph import driver

        self._waiting(session_id, "question", "an answer")
        self._submit(session_id, lambda rt: driver.answer(rt, session_id, text))

    def revise(self, session_id: str, instructions: str) -> None:
        """Send the study at the approval gate back with `instructions` (background)."""
        from omc.lab.graph import driver

        self._waiting(session_id, "approval", "approval: nothing to revise")
        self._submit(session_id, lambda rt: driver.revise(rt, session_id, instructions))

    def decide(self, record: Any, approval: str, reason: str | None, force: bool) -> Any:
        """Approve or reject (at the gate the graph finishes; otherwise stored directly)."""
        from omc.lab.graph import driver
        from omc.lab.session.store import decide, get_session

        if (
            driver.decide(self.runtime(record.id), record.id, approval, reason=reason, force=force)
            is None
        ):
            decide(self.engine, record.id, approval, reason=reason, force=force)
        return get_session(self.engine, record.id)

    def events(self, session_id: str, after: int = 0) -> list[Any]:
        from omc.lab.session import events

        return events.read(self.engine, session_id, after_seq=after)

    def report_file(self, record: Any) -> Path | None:
        """The session's report.html, when it is inside the Lab's directory and exists."""
        if not record.report_path:
            return None
        path = Path(record.report_path).resolve()
        root = self.out_dir.resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    # ------------------------------------------------------------------ worker
    def _submit(self, session_id: str, call: Callable[[Any], Any]) -> None:
        self._pool.submit(self._run, session_id, call)

    def _run(self, session_id: str, call: Callable[[Any], Any]) -> None:
        from omc.lab.graph.driver import NotPaused, SessionBusy
        from omc.lab.session.store import save_session

        try:
            call(self.runtime(session_id))
        except NotPaused:  # a planned session the graph never started
            save_session(self.engine, session_id, status="failed", error=NOT_STARTED)
        except SessionBusy as exc:
            log.warning("lab session %s: %s", session_id, exc)
        except ValueError as exc:
            save_session(
                self.engine,
                session_id,
                status="failed",
                error=mask_text(" ".join(str(exc).split()), 500),
            )
        except Exception as exc:  # the graph stores its own failures; this is a bug
            log.error("lab study %s crashed: %s", session_id, mask_text(repr(exc), 300))
            save_session(
                self.engine,
                session_id,
                status="failed",
                error=f"internal error ({type(exc).__name__})",
            )


def _resume(rt: Any, session_id: str) -> Any:
    from omc.lab.graph import driver

    return driver.resume(rt, session_id)
