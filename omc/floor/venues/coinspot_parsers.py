"""CoinSpot private API: reading answers and failures — refusals, what may be retried,
balances, order lists — and building the parameters of a call. Order lists (`buyorders` /
`sellorders`) are parsed by the one implementation the public-API collector uses too
(`omc.ledgers.exchange.coinspot.parse_order_lists`).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import ValidationError

from omc.core.http import PayloadError, RequestFailed
from omc.core.payloads import json_text, validation_summary
from omc.core.time import parse_instant
from omc.floor.venues.coinspot_models import (
    CoinBalance,
    CoinSpotAPIError,
    CoinSpotAuthError,
    CoinSpotNonceError,
    M,
)
from omc.floor.venues.coinspot_signing import CrossOriginRedirect
from omc.ledgers.exchange.coinspot import parse_order_lists


def refusal(url: str, http_status: int, status: str, message: Any) -> CoinSpotAPIError:
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


def http_refusal(url: str, exc: RequestFailed) -> CoinSpotAPIError | None:
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
    return refusal(url, exc.status, status, message or f"HTTP {exc.status}")


# httpx failures that happen before a single request byte reached the server.
NOT_SENT_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def decode_answer(url: str, response: httpx.Response) -> dict[str, Any]:
    """The `status: ok` body of an answer; a refusal raises, an unreadable body PayloadError."""
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
    raise refusal(url, response.status_code, status, body.get("message"))


def retryable(exc: RequestFailed | PayloadError, mutating: bool) -> bool:
    """May a failed attempt be sent again (with a fresh nonce)? A money-moving call only when
    the request provably never reached CoinSpot."""
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


def parse_balances(path: str, body: dict[str, Any]) -> dict[str, CoinBalance]:
    """Coin (upper case) -> balance from `/ro/my/balances`, whose `balances` is a list of
    one-key objects (`[{"BTC": {...}}, ...]`; a plain mapping is tolerated)."""
    items = body.get("balances")
    if items is None:
        items = []
    if isinstance(items, dict):
        items = [{coin: value} for coin, value in items.items()]
    if not isinstance(items, list):
        raise PayloadError(f"{path}: `balances` is not a list", json_text(body, 4000))
    out: dict[str, CoinBalance] = {}
    for entry in items:
        for coin, value in balance_items(entry, path, body):
            out[coin] = value
    return out


def parse_balance(path: str, coin: str, body: dict[str, Any]) -> CoinBalance:
    """One coin's balance from `/ro/my/balance/{coin}` (`balance`: an object or a list of one)."""
    entry = body.get("balance")
    if isinstance(entry, list) and len(entry) == 1:
        entry = entry[0]
    for found, value in balance_items(entry, path, body):
        if found == coin.upper():
            return value
    raise PayloadError(f"{path}: no balance for {coin.upper()}", json_text(body, 4000))


def with_id_text(body: dict[str, Any]) -> dict[str, Any]:
    if "id" in body and not isinstance(body["id"], str):
        return {**body, "id": str(body["id"])}
    return body


def balance_items(entry: Any, path: str, body: Any) -> list[tuple[str, CoinBalance]]:
    if not isinstance(entry, dict):
        raise PayloadError(f"{path}: balance entry is not an object", json_text(body, 4000))
    out = []
    for coin, value in entry.items():
        if not isinstance(value, dict):
            raise PayloadError(f"{path}: balance of {coin} is not an object", json_text(body, 4000))
        try:
            out.append((coin.upper(), CoinBalance.model_validate({**value, "coin": coin.upper()})))
        except ValidationError as exc:
            raise PayloadError(
                f"{path}: invalid balance: {validation_summary(exc)}", json_text(body, 4000)
            ) from exc
    return out


def sided(model: type[M], path: str, body: dict[str, Any]) -> list[M]:
    """Every entry of `buyorders` then `sellorders` as `model` (with its `side`)."""
    lists = parse_order_lists(model, path, body)
    return lists["buy"] + lists["sell"]


def instant_params(
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


def filters(coin: str | None, markettype: str | None) -> dict[str, Any]:
    return {
        "cointype": coin.upper() if coin else None,
        "markettype": markettype.upper() if markettype else None,
    }


def day_text(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = parse_instant(value).date()
    return value.isoformat()


def describe_failure(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is not None:
        return type(cause).__name__
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__
