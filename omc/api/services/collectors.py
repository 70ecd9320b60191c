"""Collectors for admins over the API: health with the paused flag, runs and quarantine
pages, a run started now in the server (one thread per run, recorded in `collector_runs`
like every run), pause and resume (`omc.ledgers.collectors.controls`)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine, select

from omc.core.config import Settings
from omc.core.masking import mask_text
from omc.ledgers.collectors import registry
from omc.ledgers.collectors.controls import controls
from omc.ledgers.models import CollectorRun, QuarantinedItem
from omc.ledgers.status import collector_health

log = logging.getLogger("omc.api.collectors")
RUNS = CollectorRun.__table__
QUARANTINE = QuarantinedItem.__table__
PAYLOAD_CHARS = 2000


def known(name: str) -> bool:
    return name in registry.COLLECTORS


def status(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    paused = controls(engine)
    out = []
    for row in collector_health(engine, settings):
        control = paused.get(row["collector"], {})
        out.append(
            {
                **row,
                "paused": bool(control.get("paused")),
                "paused_reason": control.get("reason") if control.get("paused") else None,
            }
        )
    return out


def runs_page(
    engine: Engine, name: str, *, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    query = select(RUNS).where(RUNS.c.collector == name)
    if before is not None:
        query = query.where(RUNS.c.id < before)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(RUNS.c.id.desc()).limit(limit + 1)).all()
    items = [dict(r._mapping) for r in rows[:limit]]
    for item in items:
        item.pop("owner", None)
    return items, len(rows) > limit


def quarantine_page(
    engine: Engine, *, collector: str | None, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    query = select(QUARANTINE)
    if collector is not None:
        query = query.where(QUARANTINE.c.collector == collector)
    if before is not None:
        query = query.where(QUARANTINE.c.id < before)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(QUARANTINE.c.id.desc()).limit(limit + 1)).all()
    items = []
    for r in rows[:limit]:
        item = dict(r._mapping)
        item["payload"] = mask_text(str(item["payload"]), PAYLOAD_CHARS)
        items.append(item)
    return items, len(rows) > limit


def run_now(engine: Engine, settings: Settings, name: str) -> None:
    """Start one run of `name` in a thread (ValueError, one line, when it cannot be built)."""
    from omc.ledgers.collectors.base import CollectorRunner

    collector = registry.build(name, settings)

    def work() -> None:
        try:
            CollectorRunner(engine).run(collector)
        except Exception as exc:  # recorded as a failed run by the runner; never the server's
            log.error("collector run %s crashed: %s", name, mask_text(repr(exc), 300))
        finally:
            collector.close()

    threading.Thread(target=work, name=f"omc-collect-{name}", daemon=True).start()
