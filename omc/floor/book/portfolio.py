"""The portfolio Guard: one risk layer above the accounts, across every strategy and venue.

An order first passes its account's Guard (`omc.floor.trading.guard`), then this one
(`LayeredGuard` does both, in that order, wherever a `Guard` is used): a denial's code says
which layer refused it (`portfolio_*` codes, `Denial.layer`). An order that adds exposure
is checked, with its own value added, against (every limit optional, `PortfolioLimits`):

* `portfolio_kill_switch` — the book's kill switch (`floor_kill_switch` scope `book`);
* `portfolio_drawdown` / `portfolio_daily_loss` — the book's equity (Σ accounts) from its
  peak, and since the start of the UTC day;
* `portfolio_coin_gross` — a coin's committed value (positions plus working orders, as the
  account Guard counts them) summed over accounts and venues, coins whose recent returns are
  correlated ≥ `correlation` counting together as one group (`set_correlations`);
* `portfolio_coin_net` — the coin's net (long − short) value;
* `portfolio_gross` — Σ committed value over equity;
* `portfolio_concentration` — the largest coin group's committed value over equity;
* `portfolio_event` — a catalyst event's restriction (`omc.floor.book.events`): no new
  entries in a delisted / halted / just-listed coin, a venue paused for maintenance (every
  order), a coin limit tightened after a high-impact SEC filing;
* `portfolio_allocation` — the strategy's committed value over the capital allocated to it
  (`omc.floor.book.allocation.allocate`: fixed, equal or inverse volatility, within caps).

Orders that reduce the account's position (and the strategy's own) pass, except the net
limit: it holds for any order that moves the book's net beyond it (closing one side of a
hedge between accounts). An account's strategies net within it, as the venue holds one
position; accounts and venues add up. A coin is the symbol's base asset (`BTC/AUD` and
`BTC/USDT` are both BTC); values are in each account's quote currency, summed as they are
(no FX conversion). The book's peak and day start follow its equity at each check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from omc.floor.book.allocation import correlation_groups
from omc.floor.instruments import EIGHT_DECIMALS, InstrumentSpec
from omc.floor.trading.exposure import Committed, committed
from omc.floor.trading.guard import Denial, DenyCode, Guard, GuardLimits
from omc.floor.trading.journal import TradingState
from omc.floor.venues.base import Side

if TYPE_CHECKING:
    from omc.floor.book.events import EventRisk

ZERO = Decimal(0)


class PortfolioLimits(BaseModel):
    """Book-wide limits (money in quote currency; fractions as 0.25 = 25 %); None = off."""

    max_coin_gross: Decimal | None = Field(default=None, gt=0)
    max_coin_net: Decimal | None = Field(default=None, gt=0)
    max_gross_pct: Decimal | None = Field(default=None, gt=0)
    max_concentration: Decimal | None = Field(default=None, gt=0)
    max_daily_loss: Decimal | None = Field(default=None, gt=0)
    max_drawdown_pct: Decimal | None = Field(default=None, gt=0)
    correlation: float = Field(default=0.8, gt=0, le=1)


def coin(symbol: str) -> str:
    return symbol.split("/")[0].upper()


class PortfolioGuard:
    """The book-wide checks (module doc) over the attached accounts' trading states."""

    def __init__(
        self,
        limits: PortfolioLimits | None = None,
        *,
        capital: Mapping[str, Decimal] | None = None,
        kill: Callable[[], bool] | None = None,
        kill_every_s: float = 0.25,
        others: Callable[[], Mapping[str, TradingState]] | None = None,
        refresh_s: float = 60.0,
        events: EventRisk | None = None,
    ) -> None:
        self.limits = limits or PortfolioLimits()
        self.states: dict[str, TradingState] = {}
        self.groups: dict[str, str] = {}
        self.capital: dict[str, Decimal] = dict(capital or {})  # "account/strategy" -> cap
        self.kill = kill
        self.kill_every_s = kill_every_s
        self._kill_at = -math.inf
        self._killed = False
        self.peak = ZERO
        self.day: date | None = None
        self.day_start = ZERO
        self.others = others  # accounts no session here runs: read again every `refresh_s`
        self.refresh_s = refresh_s
        self._read_at = -math.inf
        self.live: set[str] = set()
        self.events = events  # catalyst-event restrictions (`omc.floor.book.events`)

    def attach(self, account: str, state: TradingState) -> None:
        """Count `account` (its live state: every change is seen at once)."""
        self.states[account] = state
        self.live.add(account)

    def refresh(self) -> None:
        """Read the other accounts again when `refresh_s` has passed."""
        if self.others is None or time.monotonic() - self._read_at < self.refresh_s:
            return
        self._read_at = time.monotonic()
        for account, state in self.others().items():
            if account not in self.live:
                self.states[account] = state

    def set_correlations(self, returns: Mapping[str, Sequence[float]]) -> dict[str, str]:
        """Group coins by their recent returns (`coin → returns`)."""
        self.groups = correlation_groups(
            {coin(c): r for c, r in returns.items()}, self.limits.correlation
        )
        return self.groups

    def group(self, symbol: str) -> str:
        c = coin(symbol)
        return self.groups.get(c, c)

    def equity(self) -> Decimal:
        return sum((s.book.equity() for s in self.states.values()), ZERO)

    def observe(self, now: datetime) -> Decimal:
        """The book's equity now (peak and start of the day follow it)."""
        eq = self.equity()
        if self.day != now.date():
            self.day, self.day_start = now.date(), eq
        self.peak = max(self.peak, eq)
        return eq

    def exposure(
        self, order: tuple[str, str, str, Side, Decimal, Decimal] | None = None
    ) -> tuple[dict[str, Decimal], dict[str, Decimal], dict[str, Decimal]]:
        """(gross per coin group, net per coin, gross per "account/strategy"), with
        `order` = (account, strategy, symbol, side, quantity, price) added. An account's
        strategies net within it (the venue holds one position); accounts add up."""
        gross: dict[str, Decimal] = {}
        net: dict[str, Decimal] = {}
        per_strategy: dict[str, Decimal] = {}
        for account, state in self.states.items():
            mine = order is not None and order[0] == account
            sym = order[2] if order is not None and mine else None
            px = order[5] if order is not None and mine else None
            held = committed(state, symbol=sym, price=px)
            if order is not None and mine:
                held[order[2]] = held.get(order[2], Committed()).plus(*order[3:6])
            for symbol, c in held.items():
                g, k = self.group(symbol), coin(symbol)
                gross[g] = gross.get(g, ZERO) + c.value
                net[k] = net.get(k, ZERO) + c.position_value + c.buy_value - c.sell_value
            keys = {s for (s, _), p in state.book.positions.items() if p.quantity}
            keys |= {o.strategy for o in state.working.values()}
            if order is not None and mine:
                keys.add(order[1])
            for strategy in keys:
                its = committed(state, strategy=strategy, symbol=sym, price=px)
                if order is not None and (account, strategy) == order[:2]:
                    its[order[2]] = its.get(order[2], Committed()).plus(*order[3:6])
                key = f"{account}/{strategy}"
                per_strategy[key] = sum((c.value for c in its.values()), ZERO)
        return gross, net, per_strategy

    def _killed_now(self) -> bool:
        if self.kill is None:
            return False
        now = time.monotonic()
        if now - self._kill_at >= self.kill_every_s:
            self._killed, self._kill_at = self.kill(), now
        return self._killed

    def check(
        self,
        account: str,
        state: TradingState,
        *,
        strategy: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        now: datetime,
        venue: str | None = None,
    ) -> Denial | None:
        """The portfolio layer's verdict on an order the account Guard let through."""
        if account not in self.live:
            self.attach(account, state)
        self.refresh()
        ev = self.events
        paused = ev.paused(venue, now) if ev is not None else None
        if paused is not None:
            return Denial(DenyCode.PORTFOLIO_EVENT, f"portfolio: {venue} paused: {paused.why()}")
        mark = max(price, state.book.marks.get(symbol, price))
        here = committed(state, symbol=symbol, price=mark).get(symbol, Committed())
        own = committed(state, strategy=strategy, symbol=symbol, price=mark)
        adds = not here.reduces(side, quantity)  # to the account's (the venue's) position
        adds_own = not own.get(symbol, Committed()).reduces(side, quantity)
        if not adds and not adds_own:
            return self._net_check(account, strategy, symbol, side, quantity, price)
        lim = self.limits
        blocked = ev.blocked(coin(symbol), now) if ev is not None and adds else None
        if blocked is not None:
            return Denial(
                DenyCode.PORTFOLIO_EVENT, f"portfolio: no new {coin(symbol)}: {blocked.why()}"
            )
        if adds and self._killed_now():
            return Denial(DenyCode.PORTFOLIO_KILL_SWITCH, "portfolio: the book's kill switch is on")
        equity = self.observe(now)
        if adds and lim.max_drawdown_pct is not None and self.peak > 0:
            dd = (self.peak - equity) / self.peak
            if dd >= lim.max_drawdown_pct:
                return Denial(
                    DenyCode.PORTFOLIO_DRAWDOWN,
                    f"portfolio: book drawdown {dd:.2%} ≥ {lim.max_drawdown_pct:.0%}",
                )
        if (
            adds
            and lim.max_daily_loss is not None
            and self.day_start - equity >= lim.max_daily_loss
        ):
            return Denial(
                DenyCode.PORTFOLIO_DAILY_LOSS,
                f"portfolio: book loss today {self.day_start - equity:.2f} ≥ {lim.max_daily_loss}",
            )
        gross, _, per = self.exposure((account, strategy, symbol, side, quantity, price))
        g = self.group(symbol)
        total = sum(gross.values(), ZERO)
        coin_limit, why = lim.max_coin_gross, ""
        tight = ev.tightened(coin(symbol), now) if ev is not None else None
        if tight is not None and coin_limit is not None and tight.factor is not None:
            coin_limit = coin_limit * Decimal(repr(tight.factor))
            why = f" (tightened: {tight.why()})"
        if adds and coin_limit is not None and gross[g] > coin_limit:
            return Denial(
                DenyCode.PORTFOLIO_COIN_GROSS,
                f"portfolio: {g} across the book {gross[g]:.2f} above {coin_limit}{why}",
            )
        if adds and lim.max_gross_pct is not None and total > lim.max_gross_pct * equity:
            return Denial(
                DenyCode.PORTFOLIO_GROSS,
                f"portfolio: book gross {total:.2f} above {lim.max_gross_pct:.0%} of {equity:.2f}",
            )
        if adds and lim.max_concentration is not None and gross[g] > lim.max_concentration * equity:
            return Denial(
                DenyCode.PORTFOLIO_CONCENTRATION,
                f"portfolio: {g} {gross[g]:.2f} above {lim.max_concentration:.0%} of the book",
            )
        key = f"{account}/{strategy}"
        cap = self.capital.get(key)
        if adds_own and cap is not None and per.get(key, ZERO) > cap:
            return Denial(
                DenyCode.PORTFOLIO_ALLOCATION,
                f"portfolio: {key} committed {per[key]:.2f} above its allocation {cap:.2f}",
            )
        return self._net_check(account, strategy, symbol, side, quantity, price)

    def _net_check(
        self,
        account: str,
        strategy: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
    ) -> Denial | None:
        """The coin's net limit holds for every order that moves the book's net away from
        zero beyond it — also one that closes one account's side of a hedge."""
        lim = self.limits.max_coin_net
        if lim is None:
            return None
        c = coin(symbol)
        before = abs(self.exposure()[1].get(c, ZERO))
        after = abs(self.exposure((account, strategy, symbol, side, quantity, price))[1][c])
        if after > lim and after > before:
            return Denial(
                DenyCode.PORTFOLIO_COIN_NET,
                f"portfolio: {c} net across the book {after:.2f} above {lim}",
            )
        return None

    def headroom(self, account: str, strategy: str, symbol: str, price: Decimal) -> Decimal:
        """The largest value a buy of `symbol` may add under the value limits now."""
        lim = self.limits
        gross, net, per = self.exposure()
        equity = self.equity()
        g, c = self.group(symbol), coin(symbol)
        room = [Decimal("1e30")]
        if lim.max_coin_gross is not None:
            room.append(lim.max_coin_gross - gross.get(g, ZERO))
        if lim.max_coin_net is not None:
            room.append(lim.max_coin_net - net.get(c, ZERO))
        if lim.max_gross_pct is not None:
            room.append(lim.max_gross_pct * equity - sum(gross.values(), ZERO))
        if lim.max_concentration is not None:
            room.append(lim.max_concentration * equity - gross.get(g, ZERO))
        cap = self.capital.get(f"{account}/{strategy}")
        if cap is not None:
            room.append(cap - per.get(f"{account}/{strategy}", ZERO))
        return max(min(room), ZERO)


class LayeredGuard(Guard):
    """An account's Guard, then the portfolio Guard (module doc)."""

    def __init__(
        self,
        limits: GuardLimits | None,
        portfolio: PortfolioGuard,
        account: str,
        caps: dict[str, Decimal] | None = None,
        venue: str | None = None,
    ) -> None:
        super().__init__(limits, caps)
        self.portfolio = portfolio
        self.account = account
        self.venue = venue

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
        denial = super().check(
            state,
            strategy=strategy,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=price,
            quote_ts=quote_ts,
            now=now,
            kill_active=kill_active,
            limit_price=limit_price,
            instrument=instrument,
        )
        if denial is not None or price is None:
            return denial
        return self.portfolio.check(
            self.account,
            state,
            strategy=strategy,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=price,
            now=now,
            venue=self.venue,
        )

    def headroom(
        self,
        state: TradingState,
        strategy: str,
        symbol: str,
        price: Decimal,
        instrument: InstrumentSpec | None = None,
    ) -> Decimal:
        qty = super().headroom(state, strategy, symbol, price, instrument)
        if self.account not in self.portfolio.live:
            self.portfolio.attach(self.account, state)
        value = self.portfolio.headroom(self.account, strategy, symbol, price)
        mark = max(price, state.book.marks.get(symbol, price))
        spec = instrument or InstrumentSpec(symbol, EIGHT_DECIMALS)
        return min(qty, spec.floor_quantity(value / mark)) if mark > 0 else qty
