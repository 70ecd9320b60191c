"""The Guard: pre-trade risk checks on every order, the kill switch, and staged capital.

Every order from every path (strategy orders, target weights, reconciliation never places
any, the kill switch's own flattening is the one exception to the kill check only) goes
through `Guard.check` inside `OrderManager.place`. A denial is a `Denial` with a
machine-readable `DenyCode`, and the order manager journals it; nothing reaches the venue.

Checks, in order (first failure wins):

* `kill_switch` — the database kill switch is on (`omc kill`);
* `below_instrument_minimum` / `off_step` / `off_tick` — the order breaks its instrument's
  rules (`omc.floor.instruments.InstrumentSpec`, from the venue): below the minimum quantity,
  a quantity off the step, a limit price off the tick; and, once the price is known, below
  the instrument's minimum notional;
* `stale_price` — no quote, or the quote is older than `max_quote_age_s` or stamped more
  than `max_clock_skew_s` in the future;
* `min_notional` / `max_order_notional` — order value at the execution price;
* `order_rate` — more than `max_orders_per_minute` orders in the last 60 s;
* `insufficient_cash` — a buy's notional plus fee (`cash_fee_bps`) plus the cash reserved by
  working buys exceeds the cash;

and for orders that *add* exposure (an order that only reduces a position, even if every
working order on its side fills too, is always allowed past these):

* `unknown_order_outcome` — an order on the symbol has an unknown outcome (sent, no answer;
  see `omc.floor.trading.oms`) until it is resolved;
* `halted` / `reduce_only` — the account's trading state is not `active`
  (`omc.floor.trading.modes`: halted after a drawdown halt, the kill switch or a reconcile
  mismatch; reducing after the daily-loss limit);
* `drawdown` — drawdown from peak equity ≥ `drawdown_halt_pct` (warned at `drawdown_warn_pct`);
* `daily_loss` — today's loss (realised + unrealised, net of fees) ≥ `max_daily_loss` or
  ≥ `max_daily_loss_pct` of the day's starting equity;
* `cooldown` — a fill realised a loss less than `cooldown_after_loss_s` ago;
* `max_position` / `max_position_pct` — the coin's committed value after the order would
  exceed the absolute limit or that share of equity;
* `max_open_positions` — the order would open one coin too many;
* `max_gross_exposure` — Σ committed value after the order > `max_gross_exposure_pct` × equity;
* `capital_cap` — the strategy's committed value after the order > its staged capital cap.

*Committed* means positions plus working orders (`omc.floor.trading.exposure`): resting
orders count in every limit, so several resting buys can never together exceed one.

Limits are a pydantic model (`GuardLimits`) with defaults; `GuardSettings` reads them from
`OMC_GUARD_*` environment variables (e.g. `OMC_GUARD_MAX_ORDER_NOTIONAL=2000`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, select

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.floor.instruments import EIGHT_DECIMALS, InstrumentSpec
from omc.floor.models import CapitalStage, KillSwitch
from omc.floor.trading.exposure import Committed, committed, open_symbols, reserved_cash
from omc.floor.trading.modes import Mode
from omc.floor.venues.base import CLOCK_SKEW_S, Side, quote_age_problem

if TYPE_CHECKING:
    from omc.floor.trading.journal import TradingState

ZERO = Decimal(0)

# settings a live session refuses to start without (explicitly configured, not defaults)
REQUIRED_FOR_LIVE = ("max_order_notional", "max_position_notional", "max_daily_loss")


class GuardLimits(BaseModel):
    """Risk limits (money in the account's quote currency; fractions as 0.10 = 10 %)."""

    max_order_notional: Decimal = Field(default=Decimal(5000), gt=0)
    min_order_notional: Decimal = Field(default=Decimal(5), ge=0)
    max_position_notional: Decimal = Field(default=Decimal(10000), gt=0)
    max_position_pct: Decimal = Field(default=Decimal("0.5"), gt=0)
    max_open_positions: int = Field(default=5, ge=1)
    max_gross_exposure_pct: Decimal = Field(default=Decimal(1), gt=0)
    max_daily_loss: Decimal = Field(default=Decimal(500), gt=0)
    max_daily_loss_pct: Decimal = Field(default=Decimal("0.05"), gt=0)
    drawdown_warn_pct: Decimal = Field(default=Decimal("0.05"), gt=0)
    drawdown_halt_pct: Decimal = Field(default=Decimal("0.10"), gt=0)
    max_orders_per_minute: int = Field(default=30, ge=1)
    max_quote_age_s: float = Field(default=30.0, gt=0)
    max_clock_skew_s: float = Field(default=CLOCK_SKEW_S, ge=0)
    cooldown_after_loss_s: float = Field(default=0.0, ge=0)
    capital_initial: Decimal | None = Field(
        default=None, description="Staged capital: a new strategy's cap (None: no staging)."
    )
    capital_step: Decimal = Field(default=Decimal(0), ge=0)
    capital_max: Decimal | None = None
    capital_clean_days: int = Field(default=7, ge=1)
    cash_fee_bps: Decimal = Field(
        default=Decimal(10), ge=0, description="Fee reserved on top of a buy's notional (bps)."
    )

    def daily_loss_limit(self, day_start_equity: Decimal) -> Decimal:
        """Today's allowed loss: `max_daily_loss`, or `max_daily_loss_pct` of the day's
        starting equity when that is smaller (the one rule the Guard and the metrics use)."""
        if day_start_equity > 0:
            return min(self.max_daily_loss, self.max_daily_loss_pct * day_start_equity)
        return self.max_daily_loss


def flatten_limits(limits: GuardLimits) -> GuardLimits:
    """The limits the kill switch's own flattening orders pass: they only reduce positions, so
    no size or rate limit may keep one open (everything else stays)."""
    return limits.model_copy(
        update={"max_order_notional": Decimal("1e30"), "max_orders_per_minute": 10**9}
    )


class GuardSettings(GuardLimits, BaseSettings):
    """`GuardLimits` from `OMC_GUARD_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_GUARD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    def limits(self) -> GuardLimits:
        return GuardLimits(**self.model_dump())

    def missing_for_live(self) -> list[str]:
        """Limits that live trading needs configured explicitly but are left at defaults."""
        return [name for name in REQUIRED_FOR_LIVE if name not in self.model_fields_set]


class DenyCode(StrEnum):
    KILL_SWITCH = "kill_switch"
    STALE_PRICE = "stale_price"
    MIN_NOTIONAL = "min_notional"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    ORDER_RATE = "order_rate"
    DRAWDOWN = "drawdown"
    DAILY_LOSS = "daily_loss"
    COOLDOWN = "cooldown"
    MAX_POSITION = "max_position"
    MAX_POSITION_PCT = "max_position_pct"
    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    CAPITAL_CAP = "capital_cap"
    INSUFFICIENT_CASH = "insufficient_cash"
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"
    INVALID = "invalid_order"
    BELOW_INSTRUMENT_MINIMUM = "below_instrument_minimum"
    OFF_STEP = "off_step"
    OFF_TICK = "off_tick"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_ORDER_OUTCOME = "unknown_order_outcome"
    # the portfolio Guard's (`omc.floor.book.portfolio`): limits across accounts and venues
    PORTFOLIO_KILL_SWITCH = "portfolio_kill_switch"
    PORTFOLIO_DRAWDOWN = "portfolio_drawdown"
    PORTFOLIO_DAILY_LOSS = "portfolio_daily_loss"
    PORTFOLIO_COIN_GROSS = "portfolio_coin_gross"
    PORTFOLIO_COIN_NET = "portfolio_coin_net"
    PORTFOLIO_GROSS = "portfolio_gross"
    PORTFOLIO_CONCENTRATION = "portfolio_concentration"
    PORTFOLIO_ALLOCATION = "portfolio_allocation"
    PORTFOLIO_EVENT = "portfolio_event"


# denials that count as a breach of the strategy's limits for staged capital (not the
# kill switch, missing/stale quotes, dust-sized or malformed orders)
BREACH_CODES = frozenset(
    {
        DenyCode.MAX_ORDER_NOTIONAL,
        DenyCode.ORDER_RATE,
        DenyCode.REDUCE_ONLY,
        DenyCode.HALTED,
        DenyCode.DRAWDOWN,
        DenyCode.DAILY_LOSS,
        DenyCode.MAX_POSITION,
        DenyCode.MAX_POSITION_PCT,
        DenyCode.MAX_OPEN_POSITIONS,
        DenyCode.MAX_GROSS_EXPOSURE,
        DenyCode.CAPITAL_CAP,
    }
)


@dataclass(frozen=True, slots=True)
class Denial:
    code: DenyCode
    message: str

    @property
    def layer(self) -> str:
        """Which Guard denied: `portfolio` (across accounts) or `account`."""
        return "portfolio" if self.code.value.startswith("portfolio_") else "account"

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message}


class Guard:
    """Pre-trade checks against `limits` and the account's `TradingState`."""

    def __init__(self, limits: GuardLimits | None = None, caps: dict[str, Decimal] | None = None):
        self.limits = limits or GuardLimits()
        self.caps: dict[str, Decimal] = dict(caps or {})

    def check(
        self,
        state: TradingState,
        *,
        strategy: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal | None,
        quote_ts: datetime | None,
        now: datetime,
        kill_active: bool,
        limit_price: Decimal | None = None,
        instrument: InstrumentSpec | None = None,
    ) -> Denial | None:
        """`price` is the expected execution price; `limit_price` the order's own limit
        (checked against the tick); `instrument` the venue's rules for `symbol`."""
        lim = self.limits
        if kill_active:
            return Denial(DenyCode.KILL_SWITCH, "kill switch is on")
        if quantity <= 0:
            return Denial(DenyCode.INVALID, f"quantity must be positive, got {quantity}")
        if instrument is not None:
            broken = instrument.violation(quantity, limit_price=limit_price)
            if broken is not None:
                return Denial(DenyCode(broken.code), broken.message)
        if price is None or quote_ts is None:
            return Denial(DenyCode.STALE_PRICE, f"no quote for {symbol}")
        stale = quote_age_problem(quote_ts, now, lim.max_quote_age_s, lim.max_clock_skew_s)
        if stale:
            return Denial(DenyCode.STALE_PRICE, f"{symbol} quote {stale}")
        notional = quantity * price
        if instrument is not None:
            broken = instrument.minimum_violation(quantity, price)
            if broken is not None:
                return Denial(DenyCode(broken.code), broken.message)
        if notional < lim.min_order_notional:
            return Denial(DenyCode.MIN_NOTIONAL, f"order value {notional:.2f} below minimum")
        if notional > lim.max_order_notional:
            return Denial(
                DenyCode.MAX_ORDER_NOTIONAL,
                f"order value {notional:.2f} above {lim.max_order_notional}",
            )
        cutoff = now - timedelta(seconds=60)
        recent = 0
        for t in reversed(state.order_times):
            if t <= cutoff:
                break
            recent += 1
        if recent >= lim.max_orders_per_minute:
            return Denial(DenyCode.ORDER_RATE, f"{recent} orders in the last minute")
        book = state.book
        fee = 1 + lim.cash_fee_bps / 10000
        if side is Side.BUY:
            reserved = reserved_cash(state, fee - 1)
            if notional * fee + reserved > book.cash:
                return Denial(
                    DenyCode.INSUFFICIENT_CASH,
                    f"buy needs {notional * fee:.2f}, cash {book.cash:.2f} of which "
                    f"{reserved:.2f} is held by working buys",
                )
        # the coin at its market value (a limit buy below the market does not mark it down)
        mark = max(price, book.marks.get(symbol, price))
        exposure = committed(state, symbol=symbol, price=mark)
        here = exposure.get(symbol, Committed())
        if here.reduces(side, quantity):
            return None  # only reduces (or closes) a position: always allowed past this point
        unsettled = [o for o in state.open_orders(symbol) if o.unsettled]
        if unsettled:
            ids = ", ".join(o.client_order_id for o in unsettled)
            return Denial(DenyCode.UNKNOWN_ORDER_OUTCOME, f"{symbol}: outcome unknown of {ids}")
        if state.trading != Mode.ACTIVE:
            code = DenyCode.HALTED if state.trading == Mode.HALTED else DenyCode.REDUCE_ONLY
            return Denial(
                code, f"trading is {state.trading} ({state.trading_reason}): only reducing orders"
            )
        dd = book.drawdown()
        if dd >= lim.drawdown_halt_pct:
            return Denial(DenyCode.DRAWDOWN, f"drawdown {dd:.2%} ≥ {lim.drawdown_halt_pct:.0%}")
        if self.daily_loss_hit(state):
            loss = book.daily_loss()
            return Denial(DenyCode.DAILY_LOSS, f"today's loss {loss:.2f} reached the limit")
        if (
            lim.cooldown_after_loss_s
            and book.last_loss_at is not None
            and (now - book.last_loss_at).total_seconds() < lim.cooldown_after_loss_s
        ):
            return Denial(DenyCode.COOLDOWN, "cooling down after a loss")
        equity = book.equity()
        value_after = here.plus(side, quantity, price).value  # the order at its own price
        what = f"{symbol} position with working orders"
        if value_after > lim.max_position_notional:
            return Denial(
                DenyCode.MAX_POSITION,
                f"{what} {value_after:.2f} above {lim.max_position_notional}",
            )
        if value_after > lim.max_position_pct * equity:
            return Denial(
                DenyCode.MAX_POSITION_PCT,
                f"{what} {value_after:.2f} above {lim.max_position_pct:.0%} of equity",
            )
        held = open_symbols(exposure)
        if symbol not in held and len(held) >= lim.max_open_positions:
            return Denial(DenyCode.MAX_OPEN_POSITIONS, f"{len(held)} positions open or working")
        gross = _gross(exposure, symbol) + value_after
        if gross > lim.max_gross_exposure_pct * equity:
            return Denial(
                DenyCode.MAX_GROSS_EXPOSURE, f"gross exposure with working orders {gross:.2f}"
            )
        cap = self.caps.get(strategy)
        if cap is not None:
            mine = committed(state, strategy=strategy, symbol=symbol, price=mark)
            strat_gross = _gross(mine, symbol) + (
                mine.get(symbol, Committed()).plus(side, quantity, price).value
            )
            if strat_gross > cap:
                return Denial(DenyCode.CAPITAL_CAP, f"{strat_gross:.2f} above capital cap {cap}")
        return None

    def headroom(
        self,
        state: TradingState,
        strategy: str,
        symbol: str,
        price: Decimal,
        instrument: InstrumentSpec | None = None,
    ) -> Decimal:
        """The largest buy quantity (a multiple of the instrument's quantity step; 1e-8
        without one) the size limits allow now (for sizing target weights; `check` still
        decides)."""
        lim, book = self.limits, state.book
        equity = book.equity()
        mark = max(price, book.marks.get(symbol, price))
        exposure = committed(state, symbol=symbol, price=mark)
        cur = exposure[symbol].value if symbol in exposure else ZERO
        fee = 1 + lim.cash_fee_bps / 10000
        room = min(
            lim.max_order_notional,
            lim.max_position_notional - cur,
            lim.max_position_pct * equity - cur,
            lim.max_gross_exposure_pct * equity - _gross(exposure, symbol) - cur,
            (book.cash - reserved_cash(state, fee - 1)) / fee,
        )
        cap = self.caps.get(strategy)
        if cap is not None:
            mine = committed(state, strategy=strategy, symbol=symbol, price=mark)
            room = min(room, cap - sum((c.value for c in mine.values()), ZERO))
        if room <= 0:
            return ZERO
        spec = instrument or InstrumentSpec(symbol, EIGHT_DECIMALS)
        return spec.floor_quantity(room / mark)

    def daily_loss_hit(self, state: TradingState) -> bool:
        book = state.book
        return book.daily_loss() >= self.limits.daily_loss_limit(book.day_start_equity)

    def monitor(self, state: TradingState) -> list[tuple[str, dict[str, Any]]]:
        """Events due now: ("warning", …) at the drawdown warn level, and trading-state moves
        — ("halted", …) at the drawdown halt, ("reducing", …) at the daily-loss limit,
        ("active", …) when a daily-loss `reducing` state's day is over."""
        dd = state.book.drawdown()
        out: list[tuple[str, dict[str, Any]]] = []
        if dd >= self.limits.drawdown_warn_pct and "drawdown_warn" not in state.warned:
            out.append(("warning", {"code": "drawdown_warn", "drawdown": dd}))
        hit = self.daily_loss_hit(state)
        if dd >= self.limits.drawdown_halt_pct:
            if state.trading != Mode.HALTED:
                out.append((Mode.HALTED, {"code": "drawdown_halt", "drawdown": dd}))
        elif hit and state.trading == Mode.ACTIVE:
            out.append((Mode.REDUCING, {"code": "daily_loss", "loss": state.book.daily_loss()}))
        elif not hit and state.trading == Mode.REDUCING and state.trading_reason == "daily_loss":
            out.append((Mode.ACTIVE, {"code": "daily_loss_cleared"}))
        return out


def _gross(exposure: dict[str, Committed], without: str) -> Decimal:
    """Σ committed value of every coin but `without`."""
    return sum((c.value for s, c in exposure.items() if s != without), ZERO)


def guard_report(state: TradingState) -> dict[str, Any]:
    """What the Guard did to an account (paper, live or a guarded backtest): denials by reason
    code (count, first and last time, ISO-8601) and every halt (time, strategy, code and the
    drawdown that caused it)."""
    denials = {}
    for code, count in sorted(state.denials.items()):
        first, last = state.denial_times.get(code, (None, None))
        denials[code] = {
            "count": count,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
        }
    halts = [
        {k: (v.isoformat() if isinstance(v, datetime) else str(v)) for k, v in h.items()}
        for h in state.halts
    ]
    return {"denials": denials, "halts": halts}


# ---------------------------------------------------------------------- kill switch
@dataclass(frozen=True, slots=True)
class KillState:
    active: bool
    flatten: bool = False
    reason: str = ""
    updated_at: datetime | None = None


class KillSwitchStore:
    """The kill switch in the database (`floor_kill_switch`, scope `global`). With `account`
    it is that account's switch (scope `account:<name>`): `get` is on when the global switch
    or the account's is (the global one first), `set` sets the account's."""

    def __init__(self, engine: Engine, scope: str = "global", account: str | None = None) -> None:
        self.engine = engine
        self.scope = f"account:{account}" if account is not None else scope
        self._scopes = ("global", self.scope) if account is not None else (scope,)

    def get(self) -> KillState:
        t = KillSwitch.__table__
        with self.engine.connect() as conn:
            rows = {
                r.scope: r
                for r in conn.execute(
                    select(t.c.scope, t.c.active, t.c.flatten, t.c.reason, t.c.updated_at).where(
                        t.c.scope.in_(self._scopes)
                    )
                )
            }
        for scope in self._scopes:
            row = rows.get(scope)
            if row is not None and row.active:
                return KillState(*row[1:])
        row = rows.get(self.scope)
        return KillState(*row[1:]) if row is not None else KillState(False)

    def set(self, active: bool, *, flatten: bool = False, reason: str = "") -> KillState:
        now = utcnow()
        row = {
            "scope": self.scope,
            "active": active,
            "flatten": flatten,
            "reason": reason,
            "updated_at": now,
        }
        upsert(
            self.engine,
            KillSwitch.__table__,  # type: ignore[arg-type]
            [row],
            update=("active", "flatten", "reason", "updated_at"),
        )
        return KillState(active, flatten, reason, now)


# ---------------------------------------------------------------------- staged capital
class CapitalStages:
    """Staged capital: a strategy starts at `capital_initial`; after `capital_clean_days`
    without a breach (a risk denial in `BREACH_CODES`, a drawdown warning or halt) its cap
    grows by `capital_step`, up to `capital_max`. A breach restarts the current stage's clock.
    Stored in `floor_capital_stages`, so the stage survives restarts.

    The trading session (`omc.floor.trading.session.TradingSession`) calls `advance` at start and on
    every bar and puts the cap into `Guard.caps`, where `capital_cap` denies orders that would
    take the strategy's gross exposure above it (and `headroom` sizes target orders to it);
    it calls `breach` on every breaching denial or drawdown event."""

    def __init__(self, engine: Engine, limits: GuardLimits) -> None:
        self.engine = engine
        self.limits = limits

    def _row(self, strategy: str) -> dict[str, Any] | None:
        t = CapitalStage.__table__
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.strategy == strategy)).mappings().first()
        return dict(row) if row else None

    def _save(self, row: dict[str, Any]) -> None:
        upsert(
            self.engine,
            CapitalStage.__table__,  # type: ignore[arg-type]
            [row],
            update=("stage", "cap", "stage_started_at", "last_breach_at", "updated_at"),
        )

    def cap(self, strategy: str, now: datetime) -> Decimal | None:
        """The strategy's current cap (created at stage 0 on first use; None: no staging)."""
        lim = self.limits
        if lim.capital_initial is None:
            return None
        row = self._row(strategy)
        if row is None:
            row = {
                "strategy": strategy,
                "stage": 0,
                "cap": lim.capital_initial,
                "stage_started_at": now,
                "last_breach_at": None,
                "updated_at": now,
            }
            self._save(row)
        return Decimal(row["cap"])

    def breach(self, strategy: str, now: datetime) -> None:
        row = self._row(strategy)
        if row is not None:
            row.update(last_breach_at=now, stage_started_at=now, updated_at=now)
            self._save(row)

    def advance(self, strategy: str, now: datetime) -> Decimal | None:
        """Grow the cap by one step if the current stage has lasted `capital_clean_days`
        without a breach; returns the (possibly new) cap."""
        lim = self.limits
        cap = self.cap(strategy, now)
        row = self._row(strategy)
        if cap is None or row is None:
            return cap
        if now - row["stage_started_at"] >= timedelta(days=lim.capital_clean_days):
            new = cap + lim.capital_step
            if lim.capital_max is not None:
                new = min(new, lim.capital_max)
            if new != cap:
                row.update(stage=row["stage"] + 1, cap=new, stage_started_at=now, updated_at=now)
                self._save(row)
                return new
        return cap
