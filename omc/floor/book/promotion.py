"""Staged promotion: what a strategy must show in its stage before it moves up, and who may
move it.

The evidence is read from the instance's account journal *after* its stage began
(`Entry.stage_mark`): the days its bars span (market time, so a replayed month counts as a
month), its trades (orders of this strategy that filled), the Guard's denials and the halts.

    research   → paper       no criteria (paper trading does it by itself)
    paper      → live-small  `paper_min_days`, `paper_min_trades`, divergence within bounds,
                             no limit breaches, expectations to be monitored against —
                             and a person's confirmation
    live-small → live        `live_small_min_days`, `live_small_min_trades`, divergence
                             within bounds, no breaches — and a person's confirmation

Divergence is the divergence report (`omc.floor.divergence`) of the account against its own
backtest on the same period: every comparison `within`. A limit breach is a halt of the
account or a denial with a limit code (`BREACH_CODES`, and the portfolio's `portfolio_*`):
the strategy pushed against the Guard.

Demotion goes one stage down (`live` → `live-small` → `paper` → `research`), or to a named
lower stage; the monitor takes a live strategy straight back to `paper`. Retiring is final.
Every move is a `floor_strategy_changes` row with who and why, and the criteria it met.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from omc.floor.book.registry import LIVE_STAGES, STAGES, Entry, RegistryError, get, move
from omc.floor.data import Bars
from omc.floor.trading.guard import BREACH_CODES
from omc.floor.trading.journal import Journal

NEXT = {"research": "paper", "paper": "live-small", "live-small": "live"}
BELOW = {"live": "live-small", "live-small": "paper", "paper": "research"}
def is_breach(code: str) -> bool:
    """A denial for a limit of the account (the Guard's `BREACH_CODES`, as staged capital
    counts them) or of the portfolio (`portfolio_*`)."""
    return code in BREACH_CODES or code.startswith("portfolio_")


class BookSettings(BaseSettings):
    """Promotion criteria, from `OMC_BOOK_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_BOOK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    paper_min_days: float = 14.0
    paper_min_trades: int = 20
    live_small_min_days: float = 30.0
    live_small_min_trades: int = 30
    max_breaches: int = 0


class PromotionRefused(RegistryError):
    """A promotion whose criteria are not met, or that needs a person's confirmation."""


@dataclass
class Evidence:
    """What the instance did in its current stage (from its account's journal)."""

    days: float = 0.0
    trades: int = 0
    first: datetime | None = None
    last: datetime | None = None
    denials: dict[str, int] = field(default_factory=dict)
    halts: list[str] = field(default_factory=list)

    @property
    def breaches(self) -> int:
        limit = sum(n for code, n in self.denials.items() if is_breach(code))
        return limit + len(self.halts)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["first"] = self.first.isoformat() if self.first else None
        out["last"] = self.last.isoformat() if self.last else None
        out["breaches"] = self.breaches
        return out


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def evidence(engine: Engine, entry: Entry) -> Evidence:
    """The instance's evidence since its stage began (module doc)."""
    ev = Evidence()
    filled: set[str] = set()
    for e in Journal(engine, entry.account).stored(after=entry.stage_mark):
        mine = e.strategy in (None, "", entry.name)
        if e.kind == "bar":
            ev.first = ev.first or e.ts
            ev.last = e.ts
        elif e.kind == "order_update" and mine:
            if e.client_order_id and Decimal(str(e.data.get("filled") or 0)) > 0:
                filled.add(e.client_order_id)
        elif e.kind == "denial" and mine:
            code = str(e.data.get("code", "denial"))
            ev.denials[code] = ev.denials.get(code, 0) + 1
        elif e.kind == "trading_state" and e.data.get("to") == "halted":
            ev.halts.append(str(e.data.get("code", e.data.get("reason", "halted"))))
    ev.trades = len(filled)
    if ev.first is not None and ev.last is not None:
        ev.days = (ev.last - ev.first).total_seconds() / 86400
    return ev


Divergence = Callable[[Entry], Check]


def divergence_check(engine: Engine, bars: Mapping[str, Bars] | None = None) -> Divergence:
    """The divergence criterion: the account's divergence report is `within` (on `bars`, or
    the ledger's candles of the traded period)."""
    from omc.floor.divergence import divergence_report

    def check(entry: Entry) -> Check:
        try:
            report = divergence_report(engine, entry.account, bars=bars)
        except (LookupError, ValueError) as exc:
            return Check("divergence", False, f"no divergence report: {exc}")
        reasons = [r for c in report.comparisons for r in c.reasons]
        detail = "within bounds" if not reasons else "; ".join(reasons)
        return Check("divergence", report.verdict == "within", detail)

    return check


def criteria(
    engine: Engine,
    entry: Entry,
    *,
    settings: BookSettings | None = None,
    divergence: Divergence | None = None,
) -> list[Check]:
    """The checks for promoting `entry` to its next stage (empty: none needed)."""
    to = NEXT.get(entry.stage)
    if to is None:
        return [Check("stage", False, f"{entry.stage} is the last stage it can be promoted to")]
    if to == "paper":
        return []
    s = settings or BookSettings()
    days, trades = (
        (s.paper_min_days, s.paper_min_trades)
        if entry.stage == "paper"
        else (s.live_small_min_days, s.live_small_min_trades)
    )
    ev = evidence(engine, entry)
    watched = any(k in entry.expectations for k in ("trade_return_mean", "max_drawdown"))
    checks = [
        Check(
            "expectations",
            watched,
            "the monitor can hold it to its expectations"
            if watched
            else "none: `omc strategies add --expect-from FILE` (or a Lab model's) first",
        ),
        Check("days", ev.days >= days, f"{ev.days:.1f} of {days:g} day(s) in {entry.stage}"),
        Check("trades", ev.trades >= trades, f"{ev.trades} of {trades} trade(s) in {entry.stage}"),
        Check(
            "breaches",
            ev.breaches <= s.max_breaches,
            f"{ev.breaches} limit breach(es) (at most {s.max_breaches})"
            + (f": {_breach_text(ev)}" if ev.breaches else ""),
        ),
    ]
    checks.append((divergence or divergence_check(engine))(entry))
    return checks


def _breach_text(ev: Evidence) -> str:
    parts = [f"{code} ×{n}" for code, n in sorted(ev.denials.items()) if is_breach(code)]
    parts += [f"halted ({h})" for h in ev.halts]
    return ", ".join(parts)


def promote(
    engine: Engine,
    sid: str,
    *,
    actor: str,
    reason: str,
    confirmed: bool = False,
    settings: BookSettings | None = None,
    divergence: Divergence | None = None,
) -> Entry:
    """Move `sid` one stage up when its criteria are met; a live stage also needs
    `confirmed` (a person said so). PromotionRefused names every unmet criterion."""
    entry = get(engine, sid)
    to = NEXT.get(entry.stage)
    if to is None:
        raise PromotionRefused(f"strategy {entry.id} is {entry.stage}: it cannot be promoted")
    checks = criteria(engine, entry, settings=settings, divergence=divergence)
    unmet = [c for c in checks if not c.ok]
    if unmet:
        text = "; ".join(f"{c.name}: {c.detail}" for c in unmet)
        raise PromotionRefused(f"strategy {entry.id} stays {entry.stage}: {text}")
    if to in LIVE_STAGES and not confirmed:
        raise PromotionRefused(
            f"promoting {entry.id} to {to} needs a person's confirmation (--confirm)"
        )
    data = {"criteria": [c.as_dict() for c in checks], "confirmed": confirmed}
    return move(engine, entry.id, to, actor=actor, reason=reason, kind="promote", data=data)


def demote(
    engine: Engine,
    sid: str,
    *,
    actor: str,
    reason: str,
    to: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Entry:
    """Move `sid` one stage down (or to the lower stage `to`)."""
    entry = get(engine, sid)
    target = to or BELOW.get(entry.stage)
    order = STAGES.index
    if target is None or target == "retired" or order(target) >= order(entry.stage):
        raise RegistryError(f"strategy {entry.id} is {entry.stage}: it cannot be demoted to {to}")
    return move(engine, entry.id, target, actor=actor, reason=reason, kind="demote", data=data)


def retire(engine: Engine, sid: str, *, actor: str, reason: str) -> Entry:
    """Retire `sid` for good."""
    return move(engine, sid, "retired", actor=actor, reason=reason, kind="retire")
