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

Nonces (`NonceSource`): `max(now_ms, last + 1)`, where `last` is shared by every client of the
same key in the process *and* persisted in a small file per API key (named by a hash of the
key, never the key) in one per-user directory (`OMC_COINSPOT_NONCE_DIR`, default
`~/.local/state/omc/coinspot-nonces`) guarded by an exclusive `flock`, so two processes —
even with different data directories — never send the same or a smaller nonce. The client
also serialises its own calls (one in flight per client) so nonces reach CoinSpot in the
order they were issued.

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

Secrets: key and secret are `SecretStr`, read from `OMC_COINSPOT_API_KEY` /
`OMC_COINSPOT_API_SECRET` by `CoinSpotCredentials`; they are never logged, never put in an
exception, and the client's `repr` shows neither. A redirect to another origin is never
followed (`SameOriginTransport`): the signed headers would go with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from omc.core.config import Settings
from omc.core.db import decimal_text, to_decimal
from omc.core.http import HttpClient, HttpError, PayloadError, RetryPolicy
from omc.core.time import from_epoch_ms, parse_utc, utcnow

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
# httpx failures that happen before a single request byte reached the server.
NOT_SENT_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# --------------------------------------------------------------------------- credentials


class CoinSpotCredentials(BaseSettings):
    """The private API key pair, from `OMC_COINSPOT_API_KEY` / `OMC_COINSPOT_API_SECRET`."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_COINSPOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    nonce_dir: Path | None = Field(
        default=None,
        description="Where the last CoinSpot nonce of each API key is kept (one file per key, "
        "named by a hash of it). Unset: `$XDG_STATE_HOME/omc/coinspot-nonces` "
        "(`~/.local/state/omc/coinspot-nonces`), the same for every data directory.",
    )

    def nonce_store(self) -> Path:
        """The nonce directory: per user and machine, shared by every data directory."""
        if self.nonce_dir is not None:
            return self.nonce_dir
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "omc" / "coinspot-nonces"

    def require(self) -> tuple[SecretStr, SecretStr]:
        if not self.api_key or not self.api_secret:
            raise CoinSpotAuthError(
                "coinspot: no API key pair configured "
                "(set OMC_COINSPOT_API_KEY and OMC_COINSPOT_API_SECRET)",
                url="",
            )
        return self.api_key, self.api_secret


# --------------------------------------------------------------------------- errors


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


class CrossOriginRedirect(httpx.UnsupportedProtocol):
    """A signed request redirected to another origin: refused before anything was sent."""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class SameOriginTransport(httpx.BaseTransport):
    """Sends only to the API's own origin: httpx drops `Authorization` on a cross-origin
    redirect but not CoinSpot's `key` / `sign` headers, so such a request is refused."""

    def __init__(self, inner: httpx.BaseTransport, base_url: str) -> None:
        self.inner = inner
        self.origin = _origin(httpx.URL(base_url))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if _origin(request.url) != self.origin:
            scheme, host, port = _origin(request.url)
            raise CrossOriginRedirect(
                f"refused to follow a redirect of a signed request to {scheme}://{host}:{port}",
                request=request,
            )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


# --------------------------------------------------------------------------- nonces


class NonceSource:
    """Strictly increasing nonces for one API key, across threads, clients and processes.

    `next()` returns `max(now_ms, last + 1)`. `last` is kept per key in the process (every
    client of the key shares it) and, when `path` is given, in that file under an exclusive
    `flock`, so concurrent processes serialise on it and never reuse or go below a nonce."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _last: ClassVar[dict[str, int]] = {}

    def __init__(
        self, key_id: str, path: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.key_id = key_id
        self.path = path
        self.clock = clock

    @classmethod
    def for_key(
        cls, key: SecretStr | str, store: Path | None, clock: Callable[[], float] = time.time
    ) -> NonceSource:
        """The nonces of `key`, persisted in `store/nonce-<hash of the key>` (never the key)."""
        key_id = key_fingerprint(key)
        path = store / f"nonce-{key_id}" if store is not None else None
        return cls(key_id, path, clock)

    def next(self) -> int:
        with NonceSource._lock:
            now = int(self.clock() * 1000)
            last = NonceSource._last.get(self.key_id, 0)
            nonce = max(now, last + 1) if self.path is None else self._next_from_file(now, last)
            NonceSource._last[self.key_id] = nonce
            return nonce

    def _next_from_file(self, now: int, last: int) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.read(fd, 64).decode("ascii", "replace").strip()
            stored = int(text) if text.isdigit() else 0
            nonce = max(now, last + 1, stored + 1)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(nonce).encode("ascii"))
            return nonce
        finally:
            os.close(fd)  # closing releases the lock


def key_fingerprint(key: SecretStr | str) -> str:
    """A short, non-reversible id of an API key (file names, logs)."""
    raw = key.get_secret_value() if isinstance(key, SecretStr) else key
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- signing


def encode_body(params: Mapping[str, Any]) -> bytes:
    """Serialise a flat parameter object once: compact JSON, Decimals as exact numbers."""
    parts = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Decimal):
            text = decimal_text(value)
        elif isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"unsupported parameter {name!r}: {type(value).__name__}")
        else:
            text = json.dumps(value)
        parts.append(f"{json.dumps(str(name))}:{text}")
    return ("{" + ",".join(parts) + "}").encode()


def sign(secret: SecretStr | str, body: bytes) -> str:
    """Hex HMAC-SHA512 of `body`, keyed with the API secret."""
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hmac.new(raw.encode(), body, hashlib.sha512).hexdigest()


# --------------------------------------------------------------------------- models


def _to_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return parse_utc(value.isoformat())
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        return from_epoch_ms(int(value))
    return parse_utc(str(value))


Amount = Annotated[Decimal, BeforeValidator(to_decimal)]
UtcDatetime = Annotated[datetime, BeforeValidator(_to_utc)]
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


# --------------------------------------------------------------------------- the client


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
            headers={"Accept": "application/json", "User-Agent": "oh-my-coins/0.1"},
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
            retry=RetryPolicy(
                settings.http_max_retries, settings.http_backoff_base_s, settings.http_backoff_max_s
            ),
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
                    answer = self._answer(url, response)
                except CoinSpotNonceError:
                    # A refused nonce is a definite "not executed": retry with a new one.
                    nonce_refusals += 1
                    if nonce_refusals > 2:
                        raise
                    log.warning("%s: nonce refused on %s, retrying", SOURCE, path)
                    continue
                except CoinSpotAPIError:
                    raise
                except HttpError as exc:
                    refusal = _http_refusal(url, exc)
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
        exc: HttpError | PayloadError,
        mutating: bool,
        attempt: int,
        path: str,
        url: str,
        params: Mapping[str, Any],
        nonce: int,
        sent_at: datetime,
    ) -> None:
        """Raise the right error for a failed attempt, or wait before the next one."""
        retryable = self._retryable(exc, mutating)
        if mutating and not retryable:
            raise CoinSpotOutcomeUnknown(
                f"coinspot: {path} outcome unknown ({_describe(exc)}); "
                "reconcile with open orders / order history before resubmitting",
                url=url,
                path=path,
                params=params,
                nonce=nonce,
                sent_at=sent_at,
                status=getattr(exc, "status", None),
            ) from exc
        if not retryable or attempt >= self.retry.max_retries:
            raise exc
        wait = self.retry.delay(attempt)
        log.warning("%s: %s on %s, retry in %.2fs", SOURCE, _describe(exc), path, wait)
        self.sleep(wait)

    @staticmethod
    def _retryable(exc: HttpError | PayloadError, mutating: bool) -> bool:
        if isinstance(exc, PayloadError):
            return not mutating
        cause = exc.__cause__
        if isinstance(cause, CrossOriginRedirect):
            return False  # would be redirected again
        if isinstance(cause, NOT_SENT_EXCEPTIONS):
            return True  # never reached CoinSpot
        if exc.status == 429:
            return True  # refused before processing
        if mutating:
            return False
        return exc.status is None or exc.status >= 500

    def _answer(self, url: str, response: httpx.Response) -> dict[str, Any]:
        text = response.text
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise PayloadError(f"{url}: invalid JSON from CoinSpot ({exc})", text) from exc
        if not isinstance(body, dict):
            raise PayloadError(f"{url}: expected a JSON object", text)
        status = str(body.get("status", "")).lower()
        if status == "ok":
            return body
        raise _refusal(url, response.status_code, status, body.get("message"))

    # ----------------------------------------------------------------- account

    def status(self) -> str:
        """`/status`: checks key and signature; CoinSpot's message ('ok')."""
        return str(self.call("/status").get("message") or "ok")

    def balances(self) -> dict[str, CoinBalance]:
        """`/ro/my/balances`: coin (upper case) -> balance. The body's `balances` is a list
        of one-key objects (`[{"BTC": {...}}, ...]`)."""
        body = self.call("/ro/my/balances")
        items = body.get("balances")
        if items is None:
            items = []
        if isinstance(items, dict):  # tolerate a plain mapping
            items = [{coin: value} for coin, value in items.items()]
        if not isinstance(items, list):
            raise PayloadError("/ro/my/balances: `balances` is not a list", _raw(body))
        out: dict[str, CoinBalance] = {}
        for entry in items:
            for coin, value in _one_key_items(entry, "/ro/my/balances", body):
                out[coin] = value
        return out

    def balance(self, coin: str, *, available: bool = True) -> CoinBalance:
        """`/ro/my/balance/{coin}` (`?available=yes` adds what is not locked in orders)."""
        path = f"/ro/my/balance/{coin.upper()}" + ("?available=yes" if available else "")
        body = self.call(path)
        entry = body.get("balance")
        if isinstance(entry, list) and len(entry) == 1:
            entry = entry[0]
        pairs = _one_key_items(entry, path, body)
        for found, value in pairs:
            if found == coin.upper():
                return value
        raise PayloadError(f"{path}: no balance for {coin.upper()}", _raw(body))

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
            _instant_params(coin, amount, amounttype, rate, threshold, direction),
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
            _instant_params(coin, amount, amounttype, rate, threshold, direction),
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
        body = self.call(path, _filters(coin, markettype))
        return _sided(OpenOrder, path, body)

    def open_limit_orders(self, coin: str | None = None) -> list[OpenOrder]:
        """CoinSpot's conditional limit/stop orders (`/ro/my/orders/limit/open`)."""
        path = "/ro/my/orders/limit/open"
        body = self.call(path, _filters(coin, None))
        return _sided(OpenOrder, path, body)

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
            **_filters(coin, markettype),
            "startdate": _day(start),
            "enddate": _day(end),
            "limit": limit,
        }
        return _sided(CompletedOrder, path, self.call(path, params))

    def transactions(
        self, start: date | datetime | None = None, end: date | datetime | None = None
    ) -> list[Transaction]:
        """`/ro/my/transactions`: buys and sells with AUD fee and totals."""
        path = "/ro/my/transactions"
        params = {"startdate": _day(start), "enddate": _day(end)}
        return _sided(Transaction, path, self.call(path, params))

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
            return model.model_validate(_with_id_text(body))
        except ValidationError as exc:
            raise PayloadError(f"{path}: unexpected answer: {_short(exc)}", _raw(body)) from exc


# --------------------------------------------------------------------------- module helpers


def _refusal(url: str, http_status: int, status: str, message: Any) -> CoinSpotAPIError:
    text = str(message or status or "no status").strip()[:500]
    lowered = text.lower()
    full = f"coinspot: {url} refused: {text}"
    if "nonce" in lowered:
        return CoinSpotNonceError(full, url=url, status=http_status, api_message=text)
    if (
        status == "invalid"
        or http_status in (401, 403)
        or any(word in lowered for word in ("key", "sign", "permission", "unauthori"))
    ):
        return CoinSpotAuthError(full, url=url, status=http_status, api_message=text)
    return CoinSpotAPIError(full, url=url, status=http_status, api_message=text)


def _http_refusal(url: str, exc: HttpError) -> CoinSpotAPIError | None:
    """A 4xx (other than 429) is CoinSpot saying no: the call had no effect."""
    if exc.status is None or not 400 <= exc.status < 500 or exc.status == 429:
        return None
    message: Any = None
    status = ""
    try:
        body = json.loads(exc.body)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("message")
        status = str(body.get("status", "")).lower()
    return _refusal(url, exc.status, status, message or f"HTTP {exc.status}")


def _with_id_text(body: dict[str, Any]) -> dict[str, Any]:
    if "id" in body and not isinstance(body["id"], str):
        return {**body, "id": str(body["id"])}
    return body


def _one_key_items(entry: Any, path: str, body: Any) -> list[tuple[str, CoinBalance]]:
    if not isinstance(entry, dict):
        raise PayloadError(f"{path}: balance entry is not an object", _raw(body))
    out = []
    for coin, value in entry.items():
        if not isinstance(value, dict):
            raise PayloadError(f"{path}: balance of {coin} is not an object", _raw(body))
        try:
            out.append((coin.upper(), CoinBalance.model_validate({**value, "coin": coin.upper()})))
        except ValidationError as exc:
            raise PayloadError(f"{path}: invalid balance: {_short(exc)}", _raw(body)) from exc
    return out


def _sided(model: type[M], path: str, body: dict[str, Any]) -> list[M]:
    out: list[M] = []
    for side in ("buy", "sell"):
        items = body.get(f"{side}orders")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise PayloadError(f"{path}: `{side}orders` is not a list", _raw(body))
        for item in items:
            if not isinstance(item, dict):
                raise PayloadError(f"{path}: an order is not an object", _raw(body))
            try:
                out.append(model.model_validate({**item, "side": side}))
            except ValidationError as exc:
                raise PayloadError(f"{path}: invalid entry: {_short(exc)}", _raw(body)) from exc
    return out


def _instant_params(
    coin: str,
    amount: Decimal,
    amounttype: str,
    rate: Decimal | None,
    threshold: Decimal | None,
    direction: str | None,
) -> dict[str, Any]:
    if amounttype not in ("coin", "aud"):
        raise ValueError(f"amounttype must be 'coin' or 'aud', not {amounttype!r}")
    return {
        "cointype": coin.upper(),
        "amounttype": amounttype,
        "amount": amount,
        "rate": rate,
        "threshold": threshold,
        "direction": direction.upper() if direction else None,
    }


def _filters(coin: str | None, markettype: str | None) -> dict[str, Any]:
    return {
        "cointype": coin.upper() if coin else None,
        "markettype": markettype.upper() if markettype else None,
    }


def _day(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = _to_utc(value).date()
    return value.isoformat()


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is not None:
        return type(cause).__name__
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__


def _raw(body: Any) -> str:
    return json.dumps(body, sort_keys=True, default=str)[:4000]


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )[:500]
