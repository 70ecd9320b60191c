"""CoinSpot public API v2: the client, the payload models, and the price collector.

Public endpoints (no auth), under `OMC_COINSPOT_BASE_URL`:
`/pubapi/v2/latest`, `/pubapi/v2/latest/{coin}`, `/pubapi/v2/orders/open/{coin}` (order book),
`/pubapi/v2/orders/completed/{coin}` (recent trades). Prices are decimal strings keyed by
lower-case coin (`btc`; non-AUD markets `btc_usdt`). Failures come back as HTTP 200 with
`{"status": "error", "message": …}`, which the client turns into `CoinSpotError`; a body that
is not the documented shape (not an object, `prices` missing or empty, an order that does not
validate) raises `PayloadError` with the raw body, so the runner quarantines it.

The collector stores one tick per coin per collection slot (`ts` = observation time floored
to the collection interval), so a retried or repeated collection in the same slot is a
duplicate, never a second row. Crossed (bid > ask) or non-positive quotes are quarantined.
When the recent trades of one coin cannot be fetched, the prices are still stored and the run
is `partial` with that error. When no quote at all could be stored (e.g. CoinSpot renamed a
field and every quote was quarantined) the run is `failed` with the quarantine reason, even
if trades were stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Table

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.db_types import decimal_text, to_decimal
from omc.core.http import HttpClient, HttpError, PayloadError
from omc.core.payloads import json_text, validation_summary
from omc.core.time import floor_time, parse_instant, utcnow
from omc.ledgers.collectors.base import Collected, Collector, Rejected, Rows
from omc.ledgers.models import Tick, Trade

SOURCE = "coinspot"


class CoinSpotError(HttpError):
    """CoinSpot answered `status: error` (or the legacy `status: invalid`)."""


ExactNumber = Annotated[Decimal, BeforeValidator(to_decimal)]


class Quote(BaseModel):
    """One `{bid, ask, last}` entry; numbers may arrive as strings or numbers."""

    model_config = ConfigDict(extra="ignore")

    bid: ExactNumber
    ask: ExactNumber
    last: ExactNumber

    def problem(self) -> str | None:
        """Why this quote must not be stored, or None when it is sane."""
        if self.bid <= 0 or self.ask <= 0 or self.last <= 0:
            return f"non-positive price (bid={self.bid}, ask={self.ask}, last={self.last})"
        if self.bid > self.ask:
            return f"crossed quote: bid {self.bid} > ask {self.ask}"
        return None


class BookOrder(BaseModel):
    """An order-book level or a completed trade from `/orders/open|completed/{coin}`."""

    model_config = ConfigDict(extra="ignore")

    amount: ExactNumber
    rate: ExactNumber
    total: ExactNumber | None = None
    coin: str | None = None
    market: str | None = None
    solddate: datetime | None = None

    @field_validator("solddate", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> datetime | None:
        return None if value is None or value == "" else parse_instant(value)


class CompletedTrade(BookOrder):
    """A recent trade (`/orders/completed/{coin}`): dated, with a positive rate and amount."""

    solddate: datetime

    @model_validator(mode="after")
    def _positive(self) -> CompletedTrade:
        if self.rate <= 0 or self.amount <= 0:
            raise ValueError("non-positive rate or amount")
        return self


M = TypeVar("M", bound=BaseModel)


def parse_order_lists(
    model: type[M],
    path: str,
    body: Mapping[str, Any],
    on_invalid: Callable[[str, Any, str], None] | None = None,
) -> dict[str, list[M]]:
    """CoinSpot's `buyorders` / `sellorders` lists of `body` as `model`s, per side (`buy`,
    `sell`), each entry validated with its `side` added — the one parser of CoinSpot order
    lists, public (order book, recent trades) and private (open, completed orders) alike.

    A missing list is empty; one that is not a list raises `PayloadError`. An entry that is
    not an object or does not validate raises `PayloadError` too, unless `on_invalid` is given:
    then it is reported as `on_invalid(side, entry, reason)` and skipped."""
    out: dict[str, list[M]] = {}
    for side in ("buy", "sell"):
        items = body.get(f"{side}orders")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise PayloadError(f"{path}: `{side}orders` is not a list", json_text(body))
        out[side] = []
        for item in items:
            if isinstance(item, dict):
                try:
                    out[side].append(model.model_validate({**item, "side": side}))
                    continue
                except ValidationError as exc:
                    reason = f"invalid order: {validation_summary(exc)}"
            else:
                reason = "an order is not an object"
            if on_invalid is None:
                raise PayloadError(f"{path}: {reason}", json_text(body))
            on_invalid(side, item, reason)
    return out


def split_market_key(key: str) -> tuple[str, str]:
    """`btc` -> (btc, aud); `btc_usdt` -> (btc, usdt)."""
    coin, _, market = key.lower().partition("_")
    return coin, market or "aud"


class CoinSpotClient:
    """Typed access to CoinSpot's public API v2."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> CoinSpotClient:
        http = http_client(
            settings,
            settings.coinspot_base_url,
            SOURCE,
            rate_per_s=settings.coinspot_rate_per_s,
            headers={"Accept": "application/json"},
            **kwargs,
        )
        return cls(http)

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str) -> dict[str, Any]:
        body = self.http.get_json(path)
        if not isinstance(body, dict):
            raise PayloadError(
                f"{path}: expected a JSON object, got {type(body).__name__}", json_text(body)
            )
        status = str(body.get("status", "")).lower()
        if status != "ok":
            message = body.get("message") or status or "no status"
            raise CoinSpotError(
                f"coinspot: {path} answered status {status!r}: {message}",
                url=path,
                status=200,
                body=json_text(body)[:2000],
            )
        return body

    def latest_raw(self) -> dict[str, Any]:
        """The whole `/latest` body (prices for every coin and market)."""
        return self._get("/pubapi/v2/latest")

    def latest(self, coin: str, market: str | None = None) -> Quote:
        """One coin's quote. It is parsed, not judged: check `Quote.problem()` before use."""
        path = f"/pubapi/v2/latest/{coin.lower()}" + (f"/{market.lower()}" if market else "")
        body = self._get(path)
        try:
            return Quote.model_validate(body.get("prices"))
        except ValidationError as exc:
            raise PayloadError(
                f"{path}: invalid quote: {validation_summary(exc)}", json_text(body)
            ) from exc

    def open_orders(self, coin: str) -> dict[str, list[BookOrder]]:
        """The order book: `{"buy": [...], "sell": [...]}` as CoinSpot lists them."""
        path = f"/pubapi/v2/orders/open/{coin.lower()}"
        return self._orders(path, self._get(path))

    def completed_orders(self, coin: str) -> dict[str, list[BookOrder]]:
        """Recent trades: `{"buy": [...], "sell": [...]}`, each with its `solddate`."""
        path = f"/pubapi/v2/orders/completed/{coin.lower()}"
        return self._orders(path, self._get(path))

    def completed_orders_raw(self, coin: str) -> dict[str, Any]:
        return self._get(f"/pubapi/v2/orders/completed/{coin.lower()}")

    @staticmethod
    def _orders(path: str, body: dict[str, Any]) -> dict[str, list[BookOrder]]:
        return parse_order_lists(BookOrder, path, body)


def trade_key(side: str, order: BookOrder) -> str:
    """A stable digest for a completed trade (CoinSpot gives no trade id)."""
    when = order.solddate.isoformat() if order.solddate else ""
    # canonical number text: 30100, "30100.0" and 30100.00 are the same trade
    text = f"{side}|{when}|{decimal_text(order.rate)}|{decimal_text(order.amount)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CoinSpotCollector(Collector):
    """Every run: all prices from `/latest` as ticks, plus recent trades of configured coins."""

    name = SOURCE

    def __init__(
        self,
        client: CoinSpotClient,
        *,
        interval_s: float = 5.0,
        trade_coins: list[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.interval_s = interval_s
        self.trade_coins = trade_coins or []
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> CoinSpotCollector:
        return cls(
            CoinSpotClient.from_settings(settings),
            interval_s=settings.coinspot_interval_s,
            trade_coins=settings.coinspot_trade_coins,
            **kwargs,
        )

    def close(self) -> None:
        self.client.close()

    def collect(self) -> Collected:
        observed = self.clock()
        body = self.client.latest_raw()
        ts = floor_time(observed, self.interval_s)
        result = Collected()
        prices = body.get("prices")
        if not isinstance(prices, dict) or not prices:
            what = "missing or not an object" if not isinstance(prices, dict) else "empty"
            raise PayloadError(f"latest: `prices` {what}", json_text(body))
        ticks: list[dict[str, Any]] = []
        for key, raw in prices.items():
            result.fetched += 1
            try:
                quote = Quote.model_validate(raw)
            except ValidationError as exc:
                result.rejected.append(
                    Rejected(f"{key}: invalid quote: {validation_summary(exc)}", {key: raw})
                )
                continue
            problem = quote.problem()
            if problem:
                result.rejected.append(Rejected(f"{key}: {problem}", {key: raw}))
                continue
            coin, market = split_market_key(key)
            ticks.append(
                {
                    "source": SOURCE,
                    "coin": coin,
                    "market": market,
                    "ts": ts,
                    "bid": quote.bid,
                    "ask": quote.ask,
                    "last": quote.last,
                    "volume": None,
                }
            )
        result.rows.append(Rows(cast(Table, Tick.__table__), ticks))
        # the prices are this source's primary output: none stored is a failed run, even
        # when the trades below are fine
        result.fail_if_none_stored("quotes", len(ticks), list(result.rejected))
        for coin in self.trade_coins:
            part = Collected()  # merged only when the whole trades body was usable
            try:
                trades = self._trades(coin, part)
            except PayloadError as exc:  # keep the prices; quarantine the trades body
                result.rejected.append(Rejected(f"{coin} trades: {exc.reason}", exc.raw))
                result.errors.append(f"{coin} trades: bad payload: {exc.reason}")
                continue
            except HttpError as exc:
                result.errors.append(f"{coin} trades: {exc}")
                continue
            result.fetched += part.fetched
            result.rejected.extend(part.rejected)
            result.rows.append(Rows(cast(Table, Trade.__table__), trades))
        return result

    def _trades(self, coin: str, result: Collected) -> list[dict[str, Any]]:
        path = f"/pubapi/v2/orders/completed/{coin.lower()}"
        body = self.client.completed_orders_raw(coin)

        def refused(side: str, raw: Any, reason: str) -> None:
            result.fetched += 1
            result.rejected.append(Rejected(f"{coin} trade: {reason}", raw))

        rows: list[dict[str, Any]] = []
        for side, trades in parse_order_lists(CompletedTrade, path, body, refused).items():
            result.fetched += len(trades)
            for order in trades:
                market = (order.market or f"{coin}/aud").lower()
                rows.append(
                    {
                        "exchange": SOURCE,
                        "symbol": market.upper(),
                        "trade_key": trade_key(side, order),
                        "ts": order.solddate,
                        "side": side,
                        "price": order.rate,
                        "amount": order.amount,
                    }
                )
        return rows
