"""Recovery of orders whose outcome is unknown, and the start-up reconciliation.

**Unknown outcomes** (`resolve`). An order sent without an answer (`new` found at start-up,
or `unknown` after the submit retries ran out, see `omc.floor.trading.oms`) is settled only on
evidence, never by sending it again: found among the venue's open orders or in its order
history (`venue.lookup`, else `open_orders` / `fills_since`) → that state; absent from both
(reads that succeeded), at least `settle_s` after it was sent, *and* the venue's balances
agreeing with the journal → `rejected` (`not_placed`). A failed read leaves it `unknown` and
journals a warning (`unknown_order_outcome`).

**Start-up** (`reconcile`). Venues that cannot map order ids themselves (CoinSpot) get the
journal's orders (`venue.adopt`); every open order is brought in line with the venue; then
each base asset of the account's symbols must hold the baseline journaled in the `start`
event (`balances`) plus the journal's position. A difference (or unreadable balances) is
journaled in the `reconcile` report with `halted: true`; the session then refuses to trade.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from omc.floor.trading.oms import ManagedOrder
from omc.floor.venues.base import (
    Balance,
    KnownOrder,
    OrderRequest,
    VenueError,
    VenueOrderAck,
    VenueOrderStatus,
)

if TYPE_CHECKING:
    from omc.floor.trading.journal import TradingState
    from omc.floor.trading.oms import OrderManager

ZERO = Decimal(0)
DEFAULT_SETTLE_S = 2.0  # absence is only believed this long after the send
ADOPT_LOOKBACK = timedelta(days=1)  # final orders this much older than the oldest open one


def known_order(order: ManagedOrder) -> KnownOrder:
    """What the journal knows about `order`, in the venue interface's terms."""
    request = OrderRequest(
        order.client_order_id,
        order.symbol,
        order.side,
        order.quantity,
        order.type,
        order.limit_price,
    )
    return KnownOrder(
        request,
        order.venue_order_id,
        order.created,
        order.filled,
        outcome_unknown=order.unsettled,
        final=not order.open,
    )


def lookup(oms: OrderManager, order: ManagedOrder) -> VenueOrderAck | None:
    """The venue's view of `order` (None: it shows it nowhere); raises on read errors."""
    lookup = getattr(oms.venue, "lookup", None)
    if lookup is not None:
        found: VenueOrderAck | None = lookup(known_order(order))
        return found
    cid, vid = order.client_order_id, order.venue_order_id
    for listed in oms.venue.open_orders(order.symbol):
        if listed.client_order_id == cid or (vid is not None and listed.venue_order_id == vid):
            return VenueOrderAck(
                cid,
                listed.venue_order_id,
                listed.status,
                listed.created,
                listed.filled_quantity,
                order.average_price,
                order.fee,
            )
    own = [
        f
        for f in oms.venue.fills_since(order.created - ADOPT_LOOKBACK)
        if f.client_order_id == cid or (vid is not None and f.venue_order_id == vid)
    ]
    if not own and vid is None:
        return None
    filled = sum((f.quantity for f in own), ZERO)
    notional = sum((f.quantity * f.price for f in own), ZERO)
    return VenueOrderAck(
        cid,
        own[0].venue_order_id if own else vid,
        VenueOrderStatus.FILLED if filled >= order.quantity else VenueOrderStatus.CANCELLED,
        own[-1].ts if own else order.created,
        filled,
        notional / filled if filled else None,
        sum((f.fee for f in own), ZERO),
    )


def resolve(oms: OrderManager, now: datetime, orders: list[ManagedOrder] | None = None) -> int:
    """Settle `new` / `unknown` orders from evidence (see the module docstring);
    returns how many are still unsettled."""
    pending = (
        orders if orders is not None else [o for o in oms.state.orders.values() if o.unsettled]
    )
    for order in pending:
        try:
            ack = lookup(oms, order)
        except VenueError as exc:
            oms.mark_unknown(order, now, str(exc))
            oms.journal.append(
                "warning",
                {"code": "unknown_order_outcome", "message": f"lookup failed: {exc}"},
                ts=now,
                strategy=order.strategy,
                symbol=order.symbol,
                client_order_id=order.client_order_id,
            )
            continue
        if ack is not None:
            oms.record(ack, now)
            continue
        oms.mark_unknown(order, now, "not found yet")
        settle = float(getattr(oms.venue, "settle_s", DEFAULT_SETTLE_S))
        if (now - order.created).total_seconds() < settle:
            continue
        try:
            diffs = balance_differences(oms.state, oms.venue.balances())
        except VenueError as exc:
            diffs = {"balances": str(exc)}
        if diffs:
            oms.journal.append(
                "warning",
                {
                    "code": "unknown_order_outcome",
                    "message": "absent at the venue but balances do not agree",
                    "balance_differences": diffs,
                },
                ts=now,
                strategy=order.strategy,
                symbol=order.symbol,
                client_order_id=order.client_order_id,
            )
            continue
        oms.record(
            VenueOrderAck(
                order.client_order_id,
                None,
                VenueOrderStatus.REJECTED,
                now,
                reason="not_placed",
                message="in neither the open orders nor the history; balances agree",
            ),
            now,
        )
    return sum(o.unsettled for o in oms.state.orders.values())


def baseline(state: TradingState) -> dict[str, Decimal] | None:
    """The venue balances journaled when the account started (None: not recorded)."""
    raw = (state.started or {}).get("balances")
    return None if raw is None else {k: Decimal(v) for k, v in raw.items()}


def balance_differences(state: TradingState, balances: dict[str, Balance]) -> dict[str, Any]:
    """Base assets (of the account's symbols) whose venue balance is not the baseline
    plus the journal's position (none when no baseline was recorded)."""
    base = baseline(state)
    if base is None:
        return {}
    expected: dict[str, Decimal] = {}
    traded = {o.symbol for o in state.orders.values()}
    for sym in traded | set((state.started or {}).get("symbols", [])):
        asset = sym.split("/")[0]
        expected[asset] = expected.get(asset, ZERO) + state.book.position(sym)
    diffs: dict[str, Any] = {}
    for asset, position in sorted(expected.items()):
        want = base.get(asset, ZERO) + position
        have = balances[asset].total if asset in balances else ZERO
        if have != want:
            diffs[asset] = {"venue": have, "journal": want, "position": position}
    return diffs


def reconcile(oms: OrderManager, now: datetime) -> dict[str, Any]:
    """Start-up: hand the journal's orders to the venue, bring every open order in line
    with it, compare balances with the journal; journal and return the report
    (`halted`: the account must not trade)."""
    open_now = [o for o in oms.state.orders.values() if o.open]
    adopt = getattr(oms.venue, "adopt", None)
    if adopt is not None and open_now:
        since = min(o.created for o in open_now) - ADOPT_LOOKBACK
        adopt([known_order(o) for o in oms.state.orders.values() if o.created >= since])
    before = oms.journal.next_ordinal
    errors: list[str] = []
    for order in open_now:
        if order.unsettled:
            resolve(oms, now, [order])
            continue
        try:
            ack = lookup(oms, order)
        except VenueError as exc:
            errors.append(f"{order.client_order_id}: {exc}")
            continue
        if ack is not None:
            oms.record(ack, now)
    report: dict[str, Any] = {
        "orders_updated": oms.journal.next_ordinal - before,
        "unknown_orders": [o.client_order_id for o in oms.state.orders.values() if o.unsettled],
        "errors": errors,
    }
    try:
        report["balance_differences"] = balance_differences(oms.state, oms.venue.balances())
    except VenueError as exc:
        report["balances_error"] = str(exc)
    report["halted"] = bool(report.get("balance_differences") or "balances_error" in report)
    oms.journal.append("reconcile", report, ts=now)
    return report


def halt_message(report: dict[str, Any]) -> str:
    """One line for a reconcile report that halted the account."""
    if "balances_error" in report:
        return f"venue balances unreadable at start-up: {report['balances_error']}"
    parts = [
        f"{asset} venue {d['venue']} vs journal {d['journal']}"
        for asset, d in report.get("balance_differences", {}).items()
    ]
    text = "venue balances differ from the journal (" + "; ".join(parts) + ")"
    if report.get("unknown_orders"):
        text += f"; orders with unknown outcome: {', '.join(report['unknown_orders'])}"
    return text
