"""CoinSpot private API: the errors a call can end in and the typed answers.

Errors: `CoinSpotAPIError` (a definite refusal: `status: error` / `invalid`, or a 4xx), its
`CoinSpotAuthError` and `CoinSpotNonceError`, and `CoinSpotOutcomeUnknown` (a money-moving
call that failed after its bytes may have reached CoinSpot: reconcile before resubmitting).
Answers are frozen pydantic models; amounts are exact `Decimal`s, times aware UTC (CoinSpot
sends epoch milliseconds or ISO text).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

from omc.core.db_types import to_decimal
from omc.core.http import HttpError
from omc.core.time import parse_instant


class CoinSpotAPIError(HttpError):
    """CoinSpot refused the call (`status: error` / `invalid`); `api_message` is its reason.

    A refusal is definite: the call had no effect."""

    def __init__(self, message: str, *, url: str, status: int | None = None, api_message: str = ""):
        super().__init__(message, url=url, status=status, body="")
        self.api_message = api_message


class CoinSpotAuthError(CoinSpotAPIError):
    """Missing, wrong or insufficiently permitted API key, or a signature CoinSpot rejects."""


class CoinSpotNonceError(CoinSpotAPIError):
    """CoinSpot refused the nonce (not above the last one it saw for this key)."""


class CoinSpotOutcomeUnknown(HttpError):
    """A money-moving call failed after its bytes may have reached CoinSpot.

    The order/cancel may or may not have happened: reconcile (open orders, order history)
    before doing anything else. Carries what was asked (`path`, `params`, `nonce`,
    `sent_at`) — never a credential."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        path: str,
        params: Mapping[str, Any],
        nonce: int,
        sent_at: datetime,
        status: int | None = None,
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.path = path
        self.params = dict(params)
        self.nonce = nonce
        self.sent_at = sent_at


Amount = Annotated[Decimal, BeforeValidator(to_decimal)]
UtcDatetime = Annotated[datetime, BeforeValidator(parse_instant)]
Side = Literal["buy", "sell"]
M = TypeVar("M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CoinBalance(_Model):
    """One coin's holding; `available` only when asked for (`/ro/my/balance/{coin}`)."""

    coin: str
    balance: Amount
    audbalance: Amount | None = None
    rate: Amount | None = None
    available: Amount | None = None


class Quote(_Model):
    """`/quote/buy/now`, `/quote/sell/now`: the instant rate for that amount."""

    rate: Amount


class InstantTrade(_Model):
    """Answer of `/my/buy/now` / `/my/sell/now`: `amount` of `coin` for `total` in `market`."""

    coin: str
    market: str | None = None
    amount: Amount
    total: Amount | None = None
    rate: Amount | None = None

    @property
    def price(self) -> Decimal | None:
        if self.rate is not None:
            return self.rate
        return self.total / self.amount if self.total is not None and self.amount else None


class PlacedOrder(_Model):
    """Answer of `/my/buy` / `/my/sell`: the new order-book order and its `id`."""

    id: Annotated[str, BeforeValidator(str)]
    coin: str
    market: str | None = None
    amount: Amount
    rate: Amount


class OpenOrder(_Model):
    """A working order of this account (`/ro/my/orders/market/open` or `.../limit/open`).

    `amount` is what is still unfilled; `type` is set for CoinSpot limit/stop triggers."""

    id: Annotated[str, BeforeValidator(str)]
    side: Side
    coin: str
    market: str | None = None
    amount: Amount
    rate: Amount
    total: Amount | None = None
    created: UtcDatetime | None = None
    type: str | None = None


class CompletedOrder(_Model):
    """One filled (or partly filled) order from `/ro/my/orders/completed` or
    `.../market/completed`. `id` only when CoinSpot sends one; fees in AUD."""

    side: Side
    coin: str
    market: str | None = None
    amount: Amount
    rate: Amount
    total: Amount | None = None
    solddate: UtcDatetime
    audfeeExGst: Amount = Decimal(0)
    audGst: Amount = Decimal(0)
    audtotal: Amount | None = None
    otc: bool | None = None
    type: str | None = None
    id: Annotated[str, BeforeValidator(str)] | None = None

    @property
    def fee_aud(self) -> Decimal:
        return self.audfeeExGst + self.audGst


class Transaction(_Model):
    """One entry of `/ro/my/transactions` (no rate: price = total / amount)."""

    side: Side
    market: str
    amount: Amount
    created: UtcDatetime
    total: Amount | None = None
    audfeeExGst: Amount = Decimal(0)
    audGst: Amount = Decimal(0)
    audtotal: Amount | None = None
    otc: bool | None = None

    @property
    def price(self) -> Decimal | None:
        total = self.total if self.total is not None else self.audtotal
        return total / self.amount if total is not None and self.amount else None
