"""The strategy registry: every strategy instance the Floor trades, and its stage.

An *instance* is a strategy name (built-in `sma_cross`, a file `path.py:Class`, or an approved
Lab model `model:<ID>`) with its parameters, trading in one journal account; its id is a hash
of the three, so registering the same instance again finds the same row (idempotent). It
carries a version (the strategy's code, or the Lab artifact's content hash), an origin
(`lab-session`, `backtest`, `paper-trading`, `manual`), expectations — the out-of-sample
metrics it was approved on (`omc.floor.book.expectations`) — and a stage:

    research → paper → live-small → live,  and retired (from any stage, final)

Every change (registration, stage move, new expectations) is one `floor_strategy_changes`
row with who made it and why. Moving between stages is `move` (low level); the rules —
criteria and a person's confirmation — are `omc.floor.book.promotion`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.engine import Connection

from omc.core.time import iso_utc, utcnow
from omc.floor.book.models import StrategyChange, StrategyRecord
from omc.floor.strategy import Strategy
from omc.floor.trading.journal import last_event

STAGES = ("research", "paper", "live-small", "live", "retired")
LIVE_STAGES = frozenset({"live-small", "live"})
ACTIVE_STAGES = ("paper", "live-small", "live")  # results arrive: the monitor watches these
T_STRATEGIES: Table = StrategyRecord.__table__  # type: ignore[assignment]
T_CHANGES: Table = StrategyChange.__table__  # type: ignore[assignment]


class RegistryError(ValueError):
    """An unknown strategy id, a stage that does not exist, a move that is not allowed."""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values (anything else, e.g. a model object, by its repr)."""
    ok = (str, int, float, bool, type(None))
    return {str(k): v if isinstance(v, ok) else repr(v) for k, v in sorted(params.items())}


def instance_id(account: str, name: str, params: Mapping[str, Any]) -> str:
    """The stable id of (account, strategy name, parameters): 12 hex digits."""
    key = f"{account}\n{name}\n{_json(plain_params(params))}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def describe(strategy: Strategy) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(version, origin, expectations) a strategy knows about itself: a Lab model's artifact
    hash, session and out-of-sample metrics (duck-typed: the Floor never imports the Lab);
    for other strategies a `version` class attribute or the hash of the class's source."""
    from omc.floor.book.expectations import from_lab_metrics

    cls = type(strategy)
    promoted = getattr(cls, "promoted_model", None)
    manifest = getattr(promoted, "manifest", None)
    if isinstance(manifest, Mapping):
        version = str(manifest.get("content_hash") or "unknown")[:16]
        origin = {
            "kind": "lab-session",
            "session": str(getattr(promoted, "session", "")),
            "verdict": manifest.get("verdict"),
            "data": manifest.get("data"),
        }
        metrics = manifest.get("metrics") or {}
        return version, origin, from_lab_metrics(metrics.get("oos") or {})
    declared = getattr(cls, "version", None)
    if isinstance(declared, str):
        return declared, {"kind": "manual"}, {}
    try:
        version = hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()[:12]
    except (OSError, TypeError):
        version = "unknown"
    return version, {"kind": "manual"}, {}


@dataclass(frozen=True)
class Entry:
    """One registered strategy instance."""

    id: str
    name: str
    params: dict[str, Any]
    account: str
    version: str
    origin: dict[str, Any]
    expectations: dict[str, Any]
    stage: str
    stage_since: datetime
    stage_mark: int
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "account": self.account,
            "stage": self.stage,
            "params": self.params,
            "version": self.version,
            "origin": self.origin,
            "expectations": self.expectations,
            "stage_since": iso_utc(self.stage_since),
            "stage_mark": self.stage_mark,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
        }


def _entry(row: Any) -> Entry:
    m = row._mapping
    return Entry(
        id=m["id"],
        name=m["name"],
        params=json.loads(m["params"]),
        account=m["account"],
        version=m["version"],
        origin=json.loads(m["origin"]),
        expectations=json.loads(m["expectations"]),
        stage=m["stage"],
        stage_since=m["stage_since"],
        stage_mark=int(m["stage_mark"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _record(
    conn: Connection,
    sid: str,
    kind: str,
    *,
    actor: str,
    reason: str,
    before: str | None = None,
    after: str | None = None,
    data: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    conn.execute(
        insert(T_CHANGES).values(
            strategy_id=sid,
            ts=now or utcnow(),
            kind=kind,
            from_stage=before,
            to_stage=after,
            actor=actor,
            reason=reason,
            data=_json(dict(data or {})),
        )
    )


def _mark(engine: Engine, account: str) -> int:
    last = last_event(engine, account)
    return last.ordinal if last is not None else -1


def register(
    engine: Engine,
    strategy: Strategy,
    account: str,
    *,
    stage: str = "research",
    origin: Mapping[str, Any] | None = None,
    expectations: Mapping[str, Any] | None = None,
    actor: str = "system",
    reason: str = "registered",
) -> Entry:
    """Register `strategy` (its name and parameters) trading in `account`; an instance already
    registered is returned unchanged except that a new code version is recorded (a change row)
    and given expectations replace empty ones."""
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    params = plain_params(strategy.params)
    sid = instance_id(account, strategy.name, params)
    version, own_origin, own_expect = describe(strategy)
    expect = dict(expectations or own_expect)
    if own_origin["kind"] != "lab-session" and origin is not None:
        own_origin = dict(origin)
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(T_STRATEGIES).where(T_STRATEGIES.c.id == sid)).first()
        if row is None:
            conn.execute(
                insert(T_STRATEGIES).values(
                    id=sid,
                    name=strategy.name,
                    params=_json(params),
                    account=account,
                    version=version,
                    origin=_json(own_origin),
                    expectations=_json(expect),
                    stage=stage,
                    stage_since=now,
                    stage_mark=_mark(engine, account),
                    created_at=now,
                    updated_at=now,
                )
            )
            _record(conn, sid, "register", actor=actor, reason=reason, after=stage, now=now)
        else:
            old = _entry(row)
            changes: dict[str, Any] = {}
            if old.version != version:
                changes["version"] = version
            if expect and not old.expectations:
                changes["expectations"] = _json(expect)
            if changes:
                conn.execute(
                    update(T_STRATEGIES)
                    .where(T_STRATEGIES.c.id == sid)
                    .values(updated_at=now, **changes)
                )
                detail = {"version": [old.version, version]} if "version" in changes else {}
                _record(conn, sid, "update", actor=actor, reason=reason, data=detail, now=now)
    return get(engine, sid)


def set_expectations(
    engine: Engine, sid: str, expectations: Mapping[str, Any], *, actor: str, reason: str
) -> Entry:
    """Replace the expectations of `sid` (journaled with the old and the new ones)."""
    old = get(engine, sid)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(T_STRATEGIES)
            .where(T_STRATEGIES.c.id == sid)
            .values(expectations=_json(dict(expectations)), updated_at=now)
        )
        data = {"old": old.expectations, "new": dict(expectations)}
        _record(conn, sid, "expectations", actor=actor, reason=reason, data=data, now=now)
    return get(engine, sid)


def move(
    engine: Engine,
    sid: str,
    to: str,
    *,
    actor: str,
    reason: str,
    kind: str = "move",
    data: Mapping[str, Any] | None = None,
) -> Entry:
    """Put `sid` in stage `to` (no criteria checked: see `promotion`), journaled."""
    if to not in STAGES:
        raise RegistryError(f"unknown stage {to!r}; stages: {', '.join(STAGES)}")
    old = get(engine, sid)
    if old.stage == "retired":
        raise RegistryError(f"strategy {sid} is retired: register a new instance instead")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(T_STRATEGIES)
            .where(T_STRATEGIES.c.id == sid)
            .values(
                stage=to, stage_since=now, stage_mark=_mark(engine, old.account), updated_at=now
            )
        )
        _record(
            conn, sid, kind, actor=actor, reason=reason, before=old.stage, after=to, data=data,
            now=now,
        )  # fmt: skip
    return get(engine, sid)


def get(engine: Engine, sid: str) -> Entry:
    """The instance `sid` (a unique prefix of its id is enough)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(T_STRATEGIES).where(T_STRATEGIES.c.id.startswith(sid, autoescape=True))
        ).all()
    if sid and len(rows) == 1:
        return _entry(rows[0])
    if len(rows) > 1:
        exact = [r for r in rows if r._mapping["id"] == sid]
        if exact:
            return _entry(exact[0])
        raise RegistryError(f"strategy id {sid!r} is ambiguous ({len(rows)} match)")
    raise RegistryError(f"no registered strategy {sid!r} (see `omc strategies list`)")


def entries(engine: Engine, *, account: str | None = None, stage: str | None = None) -> list[Entry]:
    """Registered instances (of an account, in a stage), oldest first."""
    query = select(T_STRATEGIES).order_by(T_STRATEGIES.c.created_at, T_STRATEGIES.c.id)
    if account is not None:
        query = query.where(T_STRATEGIES.c.account == account)
    if stage is not None:
        query = query.where(T_STRATEGIES.c.stage == stage)
    with engine.connect() as conn:
        return [_entry(r) for r in conn.execute(query).all()]


def history(engine: Engine, sid: str) -> list[dict[str, Any]]:
    """Every change of `sid`, oldest first."""
    t = T_CHANGES.c
    with engine.connect() as conn:
        rows = conn.execute(select(T_CHANGES).where(t.strategy_id == sid).order_by(t.seq)).all()
    return [
        {
            "ts": iso_utc(r.ts),
            "kind": r.kind,
            "from": r.from_stage,
            "to": r.to_stage,
            "by": r.actor,
            "reason": r.reason,
            "data": json.loads(r.data),
        }
        for r in rows
    ]


def trading(engine: Engine, strategy: Strategy, account: str, *, venue: str = "paper") -> Entry:
    """Register the instance a trading session runs (idempotent). Paper trading a strategy
    still in `research` moves it to `paper` — it is now paper-trading."""
    origin = {"kind": "paper-trading" if venue == "paper" else "trading", "venue": venue}
    stage = "paper" if venue == "paper" else "research"
    entry = register(
        engine, strategy, account, stage=stage, origin=origin, reason=f"{venue} trading started"
    )
    if venue == "paper" and entry.stage == "research":
        entry = move(
            engine,
            entry.id,
            "paper",
            actor="system",
            reason="paper trading started",
            kind="promote",
        )
    return entry
