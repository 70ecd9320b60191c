"""CoinSpot private API v2: a signed, nonce-ordered, retry-aware client with typed answers.

Wire protocol (coinspot.com.au/v2/api): every private call is `POST <base>/api/v2/<path>`
(read-only calls under `/api/v2/ro/...`) with a JSON object body holding the call's
parameters plus `nonce`, an integer that must be larger than every nonce the key sent
before. Headers: `key` (the API key) and `sign` = hex HMAC-SHA512 of the *exact body bytes*,
keyed with the secret. The body is serialised once, those bytes are signed and the same
bytes are sent. Failures are `{"status": "error", "message": ...}` (HTTP 200, or 4xx for a
missing/invalid key); older answers use `"status": "invalid"` for a bad key or signature.

CoinSpot vocabulary: a "market order" (`/my/buy`, `/my/sell`, listed by
`/ro/my/orders/market/open`) is an order-book order at a given rate (what OMC calls a limit
order); "buy now"/"sell now" are instant trades at CoinSpot's rate (OMC's market orders);
CoinSpot's "limit orders" (`/ro/my/orders/limit/open`) are conditional buy-limit/buy-stop/
stop-loss/take-profit triggers, listed here for completeness.

Nonces and signing: `omc.floor.venues.coinspot_signing`. The client serialises its own calls
(one in flight per client) so nonces reach CoinSpot in the order they were issued.

Retries and the double-submission problem: each attempt is re-signed with a fresh nonce
(re-sending the same bytes would be refused as a stale nonce). Read-only calls (and `/status`,
quotes) are retried on timeouts, connection errors, 5xx and 429. Calls that move money
(`MUTATING_PATHS`) are retried only when the request provably never reached CoinSpot — a
connection that could not be opened (`ConnectError`, `ConnectTimeout`, `PoolTimeout`), a 429,
or a refused nonce. Any other failure after the bytes may have left (read timeout, reset,
5xx from a proxy, an unreadable 200) raises `CoinSpotOutcomeUnknown`: the order may or may not
exist, and the caller must reconcile (open orders, order history) before resubmitting —
`omc.floor.venues.coinspot.CoinSpotVenue` does exactly that. Because CoinSpot refuses any
nonce not above the last one it processed, once a later call (the reconciliation query) has
been answered, an earlier request still stuck in flight can no longer execute.

Secrets never appear in logs, exceptions or the client's `repr`; a signed request never
follows a redirect to another origin. Errors and answers: `omc.floor.venues.coinspot_models`;
parsing: `omc.floor.venues.coinspot_parsers`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError

from omc.core.clients import USER_AGENT, retry_policy
from omc.core.config import Settings
from omc.core.http import HttpClient, PayloadError, RequestFailed, RetryPolicy
from omc.core.payloads import json_text, validation_summary
from omc.core.time import utcnow
from omc.floor.venues.coinspot_models import (
    CoinBalance,
    CoinSpotAPIError,
    CoinSpotNonceError,
    CoinSpotOutcomeUnknown,
    CompletedOrder,
    InstantTrade,
    M,
    OpenOrder,
    PlacedOrder,
    Quote,
    Transaction,
)
from omc.floor.venues.coinspot_parsers import (
    day_text,
    decode_answer,
    describe_failure,
    filters,
    http_refusal,
    instant_params,
    parse_balance,
    parse_balances,
    retryable,
    sided,
    with_id_text,
)
from omc.floor.venues.coinspot_signing import (
    CoinSpotCredentials,
    NonceSource,
    SameOriginTransport,
    encode_body,
    key_fingerprint,
    sign,
)

log = logging.getLogger(__name__)

SOURCE = "coinspot-private"
API_PREFIX = "/api/v2"

# Paths whose effect is not idempotent: never blindly retried once the bytes may have left.
MUTATING_PATHS = frozenset(
    {
        "/my/buy",
        "/my/sell",
        "/my/buy/now",
        "/my/sell/now",
        "/my/buy/cancel",
        "/my/sell/cancel",
        "/my/buy/cancel/all",
        "/my/sell/cancel/all",
        "/my/swap/now",
        "/my/buy/edit",
        "/my/sell/edit",
    }
)


class CoinSpotPrivateClient:
    """Typed access to CoinSpot's private API v2 (see the module docstring for the rules)."""

    def __init__(
        self,
        key: SecretStr | str,
        secret: SecretStr | str,
        *,
        base_url: str = "https://www.coinspot.com.au",
        nonces: NonceSource | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        rate_per_s: float | None = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.nonces = nonces or NonceSource(key_fingerprint(self._key))
        # the key and signature headers must never reach another host: a redirect to another
        # origin is refused before anything is sent
        guarded = SameOriginTransport(transport or httpx.HTTPTransport(), base_url)
        # Retries are done here, not in HttpClient: each attempt needs a fresh nonce and
        # a POST that may have executed must not be replayed.
        self.http = HttpClient(
            base_url,
            source=SOURCE,
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries=0),
            rate_per_s=rate_per_s,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            sleep=sleep,
            transport=guarded,
        )
        self._send_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credentials: CoinSpotCredentials | None = None,
        **kwargs: Any,
    ) -> CoinSpotPrivateClient:
        credentials = credentials or CoinSpotCredentials()
        key, secret = credentials.require()
        kwargs.setdefault("nonces", NonceSource.for_key(key, credentials.nonce_store()))
        return cls(
            key,
            secret,
            base_url=settings.coinspot_base_url,
            timeout_s=settings.http_timeout_s,
            retry=retry_policy(settings),
            rate_per_s=settings.coinspot_rate_per_s,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"CoinSpotPrivateClient(base_url={str(self.http.client.base_url)!r}, key=<hidden>)"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CoinSpotPrivateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- transport

    def call(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST `params` (+ nonce) to `/api/v2{path}`; the decoded `status: ok` body.

        Raises `CoinSpotAuthError`, `CoinSpotAPIError` (definite refusal),
        `CoinSpotOutcomeUnknown` (money-moving call, may have executed), `HttpError` /
        `PayloadError` (read-only call that kept failing)."""
        mutating = path.split("?", 1)[0] in MUTATING_PATHS
        params = dict(params or {})
        url = API_PREFIX + path
        attempt = 0
        nonce_refusals = 0
        with self._send_lock:
            while True:
                nonce = self.nonces.next()
                body = encode_body({**params, "nonce": nonce})
                headers = {
                    "key": self._key.get_secret_value(),
                    "sign": sign(self._secret, body),
                    "Content-Type": "application/json",
                }
                sent_at = utcnow()
                try:
                    response = self.http.request("POST", url, content=body, headers=headers)
                    answer = decode_answer(url, response)
                except CoinSpotNonceError:
                    # A refused nonce is a definite "not executed": retry with a new one.
                    nonce_refusals += 1
                    if nonce_refusals > 2:
                        raise
                    log.warning("%s: nonce refused on %s, retrying", SOURCE, path)
                    continue
                except CoinSpotAPIError:
                    raise
                except RequestFailed as exc:
                    refusal = http_refusal(url, exc)
                    if refusal is None:
                        self._fail(exc, mutating, attempt, path, url, params, nonce, sent_at)
                        attempt += 1
                        continue
                    if isinstance(refusal, CoinSpotNonceError) and nonce_refusals < 2:
                        nonce_refusals += 1
                        continue
                    raise refusal from None
                except PayloadError as exc:
                    self._fail(exc, mutating, attempt, path, url, params, nonce, sent_at)
                    attempt += 1
                    continue
                return answer

    def _fail(
        self,
        exc: RequestFailed | PayloadError,
        mutating: bool,
        attempt: int,
        path: str,
        url: str,
        params: Mapping[str, Any],
        nonce: int,
        sent_at: datetime,
    ) -> None:
        """Raise the right error for a failed attempt, or wait before the next one."""
        may_retry = retryable(exc, mutating)
        if mutating and not may_retry:
            raise CoinSpotOutcomeUnknown(
                f"coinspot: {path} outcome unknown ({describe_failure(exc)}); "
                "reconcile with open orders / order history before resubmitting",
                url=url,
                path=path,
                params=params,
                nonce=nonce,
                sent_at=sent_at,
                status=getattr(exc, "status", None),
            ) from exc
        if not may_retry or attempt >= self.retry.max_retries:
            raise exc
        wait = self.retry.delay(attempt)
        log.warning("%s: %s on %s, retry in %.2fs", SOURCE, describe_failure(exc), path, wait)
        self.sleep(wait)

    # ----------------------------------------------------------------- account

    def status(self) -> str:
        """`/status`: checks key and signature; CoinSpot's message ('ok')."""
        return str(self.call("/status").get("message") or "ok")

    def balances(self) -> dict[str, CoinBalance]:
        """`/ro/my/balances`: coin (upper case) -> balance."""
        return parse_balances("/ro/my/balances", self.call("/ro/my/balances"))

    def balance(self, coin: str, *, available: bool = True) -> CoinBalance:
        """`/ro/my/balance/{coin}` (`?available=yes` adds what is not locked in orders)."""
        path = f"/ro/my/balance/{coin.upper()}" + ("?available=yes" if available else "")
        return parse_balance(path, coin, self.call(path))

    # ----------------------------------------------------------------- quotes and trades

    def quote_buy_now(self, coin: str, amount: Decimal, amounttype: str = "coin") -> Quote:
        return self._model(
            Quote,
            "/quote/buy/now",
            {"cointype": coin.upper(), "amount": amount, "amounttype": amounttype},
        )

    def quote_sell_now(self, coin: str, amount: Decimal, amounttype: str = "coin") -> Quote:
        return self._model(
            Quote,
            "/quote/sell/now",
            {"cointype": coin.upper(), "amount": amount, "amounttype": amounttype},
        )

    def buy_now(
        self,
        coin: str,
        amount: Decimal,
        amounttype: str = "coin",
        *,
        rate: Decimal | None = None,
        threshold: Decimal | None = None,
        direction: str | None = None,
    ) -> InstantTrade:
        """Instant buy (`/my/buy/now`); with `rate` + `threshold` (%) it refuses to fill
        if the price moved more than that."""
        return self._model(
            InstantTrade,
            "/my/buy/now",
            instant_params(coin, amount, amounttype, rate, threshold, direction),
        )

    def sell_now(
        self,
        coin: str,
        amount: Decimal,
        amounttype: str = "coin",
        *,
        rate: Decimal | None = None,
        threshold: Decimal | None = None,
        direction: str | None = None,
    ) -> InstantTrade:
        return self._model(
            InstantTrade,
            "/my/sell/now",
            instant_params(coin, amount, amounttype, rate, threshold, direction),
        )

    def buy(
        self, coin: str, amount: Decimal, rate: Decimal, markettype: str | None = None
    ) -> PlacedOrder:
        """Order-book buy of `amount` coins at `rate` (`/my/buy`); answer carries the id."""
        return self._place("/my/buy", coin, amount, rate, markettype)

    def sell(
        self, coin: str, amount: Decimal, rate: Decimal, markettype: str | None = None
    ) -> PlacedOrder:
        return self._place("/my/sell", coin, amount, rate, markettype)

    def cancel_buy(self, order_id: str) -> None:
        self.call("/my/buy/cancel", {"id": str(order_id)})

    def cancel_sell(self, order_id: str) -> None:
        self.call("/my/sell/cancel", {"id": str(order_id)})

    # ----------------------------------------------------------------- orders and history

    def open_market_orders(
        self, coin: str | None = None, markettype: str | None = None
    ) -> list[OpenOrder]:
        """This account's working order-book orders (`/ro/my/orders/market/open`)."""
        path = "/ro/my/orders/market/open"
        body = self.call(path, filters(coin, markettype))
        return sided(OpenOrder, path, body)

    def open_limit_orders(self, coin: str | None = None) -> list[OpenOrder]:
        """CoinSpot's conditional limit/stop orders (`/ro/my/orders/limit/open`)."""
        path = "/ro/my/orders/limit/open"
        body = self.call(path, filters(coin, None))
        return sided(OpenOrder, path, body)

    def completed_orders(
        self,
        coin: str | None = None,
        *,
        markettype: str | None = None,
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        limit: int | None = None,
        market_only: bool = False,
    ) -> list[CompletedOrder]:
        """Filled orders, newest first as CoinSpot lists them (`/ro/my/orders/completed`,
        or only order-book fills with `market_only` → `/ro/my/orders/market/completed`).
        `start`/`end` are sent as `YYYY-MM-DD` dates (inclusive days)."""
        path = "/ro/my/orders/market/completed" if market_only else "/ro/my/orders/completed"
        params = {
            **filters(coin, markettype),
            "startdate": day_text(start),
            "enddate": day_text(end),
            "limit": limit,
        }
        return sided(CompletedOrder, path, self.call(path, params))

    def transactions(
        self, start: date | datetime | None = None, end: date | datetime | None = None
    ) -> list[Transaction]:
        """`/ro/my/transactions`: buys and sells with AUD fee and totals."""
        path = "/ro/my/transactions"
        params = {"startdate": day_text(start), "enddate": day_text(end)}
        return sided(Transaction, path, self.call(path, params))

    # ----------------------------------------------------------------- helpers

    def _place(
        self, path: str, coin: str, amount: Decimal, rate: Decimal, markettype: str | None
    ) -> PlacedOrder:
        params = {
            "cointype": coin.upper(),
            "amount": amount,
            "rate": rate,
            "markettype": markettype.upper() if markettype else None,
        }
        return self._model(PlacedOrder, path, params)

    def _model(self, model: type[M], path: str, params: dict[str, Any]) -> M:
        body = self.call(path, params)
        try:
            return model.model_validate(with_id_text(body))
        except ValidationError as exc:
            raise PayloadError(
                f"{path}: unexpected answer: {validation_summary(exc)}", json_text(body, 4000)
            ) from exc
