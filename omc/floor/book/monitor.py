"""Automatic demotion: each paper or live strategy held to its expectations as results arrive.

Rules (`MonitorSettings`, `OMC_BOOK_*`), checked after every bar:

* **drawdown** — the account's equity falls from its peak *in this stage* by more than the
  approved `max_drawdown` × (1 + `drawdown_margin`) (at least `drawdown_floor`);
* **returns** — a one-sided CUSUM on the per-trade returns, standardised by the expected mean
  and spread: S ← max(0, S + (μ₀ − r)/σ₀ − k); it alarms when S > h. It is tuned to detect a
  fall of δ = max(μ₀, `cusum_min_shift` × σ₀) — the edge vanishing — with k = δ/2σ₀, and h
  chosen (Siegmund's approximation) so that a healthy strategy raises a false alarm once per
  `cusum_arl` trades on average;
* **denials** — more than `max_denials` Guard denials for a limit (`promotion.is_breach`);
* **divergence** — the divergence report against its own backtest is `outside` (when a
  divergence check is given: `omc strategies check --data …`).

A strategy without expectations is *unwatched* (nothing to hold it to): it is never demoted
automatically — promotion to a live stage requires expectations. On a breach the strategy is
demoted (a live stage straight to `paper`, `paper` to `research`), recorded with the rule and
its numbers (actor `monitor`); a running session cancels its working orders through its order
manager, halts the account (`demoted`) and stops; the alert goes on the bus (`book.demoted`)
and to the configured notifiers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from omc.floor.book.promotion import is_breach
from omc.floor.trading.pnl import Book

ZERO = Decimal(0)
DUST = Decimal("0.01")  # a position below 1 % of its trade's largest value is flat


class MonitorSettings(BaseSettings):
    """Demotion rules, from `OMC_BOOK_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_BOOK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    drawdown_margin: float = 0.5
    drawdown_floor: float = 0.02
    cusum_min_shift: float = 0.25
    cusum_arl: float = 10000.0
    max_denials: int = 20


def cusum_arl(k: float, h: float) -> float:
    """Siegmund's approximation of a one-sided CUSUM's average run length when the
    standardised increments have mean −k (in control): (e^{2kb} − 2kb − 1) / 2k², b = h+1.166."""
    b = h + 1.166
    return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)


def cusum_threshold(k: float, arl: float) -> float:
    """The h whose in-control average run length is `arl` (bisection on `cusum_arl`)."""
    lo, hi = 0.0, 1.0
    while cusum_arl(k, hi) < arl:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cusum_arl(k, mid) < arl else (lo, mid)
    return hi


@dataclass(frozen=True)
class Breach:
    rule: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "detail": self.detail, **self.data}


class Monitor:
    """The rules for one strategy, fed its results one at a time (module doc)."""

    def __init__(
        self, expectations: Mapping[str, Any], settings: MonitorSettings | None = None
    ) -> None:
        s = settings or MonitorSettings()
        self.settings = s
        self.mu = _num(expectations.get("trade_return_mean"))
        self.sigma = _num(expectations.get("trade_return_std"))
        max_dd = _num(expectations.get("max_drawdown"))
        self.dd_limit = (
            None if max_dd is None else max(abs(max_dd) * (1 + s.drawdown_margin), s.drawdown_floor)
        )
        self.k = self.h = None
        if self.mu is not None and self.sigma:
            shift = max(self.mu, s.cusum_min_shift * self.sigma)
            self.k = shift / (2 * self.sigma)
            self.h = cusum_threshold(self.k, s.cusum_arl)
        self.watched = self.dd_limit is not None or self.k is not None
        self.s = 0.0
        self.trades = 0
        self.returns_sum = 0.0
        self.peak: Decimal | None = None
        self.drawdown = ZERO
        self.denials = 0
        self.breach: Breach | None = None

    def trade(self, r: float) -> Breach | None:
        """One closed trade's return (net of fees, a fraction of its entry value)."""
        self.trades += 1
        self.returns_sum += r
        if self.k is None or self.h is None or self.sigma is None or self.mu is None:
            return None
        self.s = max(0.0, self.s + (self.mu - r) / self.sigma - self.k)
        if self.s > self.h and self.breach is None:
            mean = self.returns_sum / self.trades
            self.breach = Breach(
                "returns",
                f"per-trade returns below expectation: CUSUM {self.s:.2f} > {self.h:.2f} after "
                f"{self.trades} trade(s), mean {mean:+.4%} vs expected {self.mu:+.4%}",
                {"cusum": self.s, "h": self.h, "k": self.k, "trades": self.trades, "mean": mean},
            )
            return self.breach
        return None

    def equity(self, value: Decimal) -> Breach | None:
        """The account's equity now (a bar's mark)."""
        if self.peak is None or value > self.peak:
            self.peak = value
        self.drawdown = (self.peak - value) / self.peak if self.peak > 0 else ZERO
        limit = self.dd_limit
        if limit is not None and self.drawdown > Decimal(repr(limit)) and self.breach is None:
            self.breach = Breach(
                "drawdown",
                f"drawdown {float(self.drawdown):.2%} beyond the approved maximum "
                f"({limit / (1 + self.settings.drawdown_margin):.2%} + "
                f"{self.settings.drawdown_margin:.0%} margin)",
                {"drawdown": str(self.drawdown), "limit": limit},
            )
            return self.breach
        return None

    def denial(self, code: str, count: int = 1) -> Breach | None:
        """Guard denials with `code` (only limit codes count)."""
        if not is_breach(code):
            return None
        self.denials += count
        if self.watched and self.denials > self.settings.max_denials and self.breach is None:
            self.breach = Breach(
                "denials",
                f"{self.denials} Guard denials for limits (at most {self.settings.max_denials})",
                {"denials": self.denials},
            )
            return self.breach
        return None

    def health(self) -> dict[str, Any]:
        """Where the strategy stands against its expectations."""
        status = "breach" if self.breach else ("ok" if self.watched else "unwatched")
        out: dict[str, Any] = {
            "status": status,
            "trades": self.trades,
            "mean_return": self.returns_sum / self.trades if self.trades else None,
            "cusum": self.s,
            "cusum_h": self.h,
            "drawdown": float(self.drawdown),
            "drawdown_limit": self.dd_limit,
            "denials": self.denials,
        }
        if self.breach:
            out["breach"] = self.breach.as_dict()
        return out


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


class RoundTrips:
    """Closed trades of one strategy, read off an account's book (polled after every bar):
    a trade runs from flat to flat in one symbol (a rest below 1 % of its largest value — a
    sell clipped by a Guard limit — counts as flat); its return is its realised P&L net of all
    its fees over its largest entry value (as the backtest's `TradeRecord.return_pct`)."""

    def __init__(self, strategy: str) -> None:
        self.strategy = strategy
        self.open: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (net P&L at entry, value)
        self.seen: dict[str, Decimal] = {}  # symbol -> net P&L at the last poll

    def _net(self, book: Book, symbol: str) -> Decimal:
        realised = sum(
            (v for (s, sym, _), v in book.realised.items() if s == self.strategy and sym == symbol),
            ZERO,
        )
        fees = sum(
            (v for (s, sym, _), v in book.fees.items() if s == self.strategy and sym == symbol),
            ZERO,
        )
        return realised - fees

    def poll(self, book: Book) -> list[float]:
        """Returns of the trades closed since the last poll."""
        closed = []
        for (strategy, symbol), pos in list(book.positions.items()):
            if strategy != self.strategy:
                continue
            net = self._net(book, symbol)
            value = abs(pos.quantity * pos.avg_cost)
            held = symbol in self.open
            flat = not pos.quantity or (held and value < self.open[symbol][1] * DUST)
            if not flat and not held:
                self.open[symbol] = (self.seen.get(symbol, ZERO), value)
            elif not flat:
                start, biggest = self.open[symbol]
                self.open[symbol] = (start, max(biggest, value))
            elif held:
                start, biggest = self.open.pop(symbol)
                if biggest > 0:
                    closed.append(float((net - start) / biggest))
            self.seen[symbol] = net
        return closed
