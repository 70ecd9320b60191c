"""A fake Ethereum JSON-RPC node on 127.0.0.1 (POST /, JSON-RPC 2.0) that can misbehave.

Answers `eth_blockNumber`, `eth_gasPrice` and `eth_getBlockByNumber(tag, full)` with real
shapes (hex quantities; a block with `number`, `timestamp`, `baseFeePerGas`, `transactions`
as hashes when `full` is false). Unknown methods answer the JSON-RPC error
`{"code": -32601, "message": "the method … does not exist/is not available"}` as geth does.

Besides the generic faults of `FaultyServer` (timeouts, resets, 5xx, 429, truncated JSON, an
HTML page, `mutate`/`replace`), `server.rpc_errors` queues JSON-RPC error objects returned
(HTTP 200) to the next calls, and `server.height` / `server.gas_price_wei` /
`server.tx_count` set the chain head.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes.defillama_server import FaultyServer

HEAD_TIMESTAMP = 1_748_786_400  # 2025-06-01T14:00:00Z


class FakeEthereumNode(FaultyServer):
    def __init__(self, height: int = 22_600_000, gas_price_wei: int = 1_234_567_890) -> None:
        super().__init__()
        self.height = height
        self.gas_price_wei = gas_price_wei
        self.tx_count = 157
        self.timestamp = HEAD_TIMESTAMP
        self.base_fee_wei: int | None = 987_654_321
        self.rpc_errors: list[dict[str, Any]] = []

    def start(self) -> FakeEthereumNode:
        super().start()
        return self

    def block(self) -> dict[str, Any]:
        block: dict[str, Any] = {
            "number": hex(self.height),
            "hash": "0x" + f"{self.height:064x}",
            "timestamp": hex(self.timestamp),
            "gasUsed": hex(15_000_000),
            "gasLimit": hex(36_000_000),
            "miner": "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5",
            "transactions": ["0x" + f"{self.height * 1000 + i:064x}" for i in range(self.tx_count)],
        }
        if self.base_fee_wei is not None:
            block["baseFeePerGas"] = hex(self.base_fee_wei)
        return block

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method != "POST" or not isinstance(body, dict):
            return 400, {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32700, "message": "parse error"},
            }
        request_id = body.get("id")
        with self.lock:
            if self.rpc_errors:
                return 200, {"jsonrpc": "2.0", "id": request_id, "error": self.rpc_errors.pop(0)}
            name = body.get("method")
            if name == "eth_blockNumber":
                result: Any = hex(self.height)
            elif name == "eth_gasPrice":
                result = hex(self.gas_price_wei)
            elif name == "eth_getBlockByNumber":
                result = self.block()
            else:
                message = f"the method {name} does not exist/is not available"
                return 200, {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "error": {"code": -32601, "message": message},
                }
        return 200, {"jsonrpc": "2.0", "id": request_id, "result": result}


def running_nodes(n: int = 2) -> Iterator[list[FakeEthereumNode]]:
    nodes = [FakeEthereumNode().start() for _ in range(n)]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()
