"""On-chain basics over JSON-RPC: the Ethereum client with endpoint failover, and its collector.

This module owns what OMC reads from Ethereum nodes (`OMC_ETHEREUM_RPC_URLS`, tried in
order). Each run asks one endpoint for `eth_blockNumber`, `eth_gasPrice` and
`eth_getBlockByNumber("latest", false)`; when an endpoint fails — HTTP errors after the
shared retries, a body that is not JSON, a JSON-RPC `error` object, a result of the wrong
shape or id — the whole set of calls moves to the next URL. When every endpoint fails the
run fails with one `HttpError` naming each endpoint's failure.

Stored in `onchain_metrics` (`chain='ethereum'`, `ts` = the latest block's timestamp, so a
run that sees the same head block again inserts nothing):

* `block_height` — `eth_blockNumber`;
* `gas_price_gwei` — `eth_gasPrice` in gwei (exact: wei / 10^9);
* `tx_per_block` — the number of transactions of the latest block;
* `base_fee_gwei` — the latest block's `baseFeePerGas` when the node gives one (EIP-1559).

`endpoint` records which node answered, reduced to scheme and host (API keys in paths or
query strings never reach the database). No API key is needed for public nodes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.http import HttpClient, HttpError, PayloadError, RequestFailed, decode_json
from omc.core.masking import url_origin
from omc.core.time import from_epoch_s
from omc.ledgers.collectors.base import Collected, Collector, Rows
from omc.ledgers.models import OnchainMetric

SOURCE = "onchain"
CHAIN = "ethereum"


class JsonRpcError(HttpError):
    """The node answered, but with a JSON-RPC error object or an unusable result."""


def hex_int(value: Any, what: str) -> int:
    """A JSON-RPC quantity (`0x1b4`) -> int."""
    if not isinstance(value, str) or not value.lower().startswith("0x"):
        raise ValueError(f"{what}: not a hex quantity: {value!r}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise ValueError(f"{what}: not a hex quantity: {value!r}") from exc


class JsonRpcClient:
    """JSON-RPC 2.0 over HTTP POST against an ordered list of endpoints."""

    def __init__(self, urls: Sequence[str], make_http: Callable[[str], HttpClient]) -> None:
        if not urls:
            raise ValueError("no JSON-RPC endpoints configured")
        self.urls = list(urls)
        self.clients = [make_http(url) for url in self.urls]
        self.ids = itertools.count(1)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> JsonRpcClient:
        def make_http(url: str) -> HttpClient:
            return http_client(
                settings,
                url,
                f"{SOURCE} {url_origin(url)}",
                headers={"Content-Type": "application/json"},
                **kwargs,
            )

        return cls(settings.ethereum_rpc_urls, make_http)

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def call(self, http: HttpClient, method: str, params: list[Any]) -> Any:
        """One call on one endpoint; JsonRpcError for an error object or a foreign id."""
        request_id = next(self.ids)
        payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        response = http.request("POST", "", content=json.dumps(payload))
        body = decode_json(response)
        url = str(http.client.base_url)
        if not isinstance(body, dict):
            raise PayloadError(f"{method}: expected a JSON object", response.text)
        if body.get("error") is not None:
            error = body["error"]
            message = error.get("message") if isinstance(error, dict) else error
            code = error.get("code") if isinstance(error, dict) else None
            raise JsonRpcError(
                f"{method}: JSON-RPC error {code}: {message}", url=url, body=response.text[:2000]
            )
        if body.get("id") != request_id or "result" not in body:
            raise JsonRpcError(
                f"{method}: response without result for id {request_id}",
                url=url,
                body=response.text[:2000],
            )
        return body["result"]

    def first_working(self, work: Callable[[HttpClient], Any]) -> tuple[str, Any]:
        """Run `work` on each endpoint in order until one succeeds: (url, result).

        Raises HttpError naming every endpoint's failure when none works.
        """
        failures: list[str] = []
        for url, http in zip(self.urls, self.clients, strict=True):
            try:
                return url, work(http)
            except PayloadError as exc:
                failures.append(f"{url_origin(url)}: bad payload: {exc.reason}")
            except (RequestFailed, ValueError) as exc:
                failures.append(f"{url_origin(url)}: {exc}")
        raise HttpError(
            f"{SOURCE}: all {len(self.urls)} JSON-RPC endpoint(s) failed: " + "; ".join(failures),
            url=url_origin(self.urls[-1]),
        )


class ChainHead:
    """What one endpoint said about the head of the chain."""

    def __init__(self, height: int, gas_price_wei: int, block: dict[str, Any]) -> None:
        self.height = height
        self.gas_price_wei = gas_price_wei
        self.timestamp = from_epoch_s(hex_int(block.get("timestamp"), "block.timestamp"))
        transactions = block.get("transactions")
        if not isinstance(transactions, list):
            raise ValueError("block.transactions: not a list")
        self.tx_count = len(transactions)
        base_fee = block.get("baseFeePerGas")
        self.base_fee_wei = None if base_fee is None else hex_int(base_fee, "block.baseFeePerGas")


def read_head(client: JsonRpcClient, http: HttpClient) -> ChainHead:
    height = hex_int(client.call(http, "eth_blockNumber", []), "eth_blockNumber")
    gas = hex_int(client.call(http, "eth_gasPrice", []), "eth_gasPrice")
    block = client.call(http, "eth_getBlockByNumber", ["latest", False])
    if not isinstance(block, dict):
        raise ValueError(f"eth_getBlockByNumber: not a block: {block!r}"[:200])
    return ChainHead(height, gas, block)


def gwei(wei: int) -> Decimal:
    return Decimal(wei).scaleb(-9)


class OnchainCollector(Collector):
    """Every run: block height, gas price and transactions per block of Ethereum."""

    name = SOURCE

    def __init__(self, client: JsonRpcClient, *, interval_s: float = 60.0) -> None:
        self.client = client
        self.interval_s = interval_s

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> OnchainCollector:
        return cls(
            JsonRpcClient.from_settings(settings, **kwargs), interval_s=settings.onchain_interval_s
        )

    def close(self) -> None:
        self.client.close()

    def collect(self) -> Collected:
        url, head = self.client.first_working(lambda http: read_head(self.client, http))
        endpoint = url_origin(url)
        values: list[tuple[str, Decimal]] = [
            ("block_height", Decimal(head.height)),
            ("gas_price_gwei", gwei(head.gas_price_wei)),
            ("tx_per_block", Decimal(head.tx_count)),
        ]
        if head.base_fee_wei is not None:
            values.append(("base_fee_gwei", gwei(head.base_fee_wei)))
        rows = [
            {
                "chain": CHAIN,
                "metric": metric,
                "ts": head.timestamp,
                "value": value,
                "endpoint": endpoint,
            }
            for metric, value in values
        ]
        return Collected(rows=[Rows(cast(Table, OnchainMetric.__table__), rows)], fetched=1)
