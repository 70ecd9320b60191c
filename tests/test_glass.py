"""The Glass ledger end to end: DeFiLlama and Ethereum JSON-RPC against faulty local servers.

Every DB test runs on SQLite and on PostgreSQL (the `engine` fixture). The fake DeFiLlama
serves the real `/protocols` sample (plus generated protocols), histories with DeFiLlama's
shapes and the fees documentation example; the fake Ethereum nodes speak JSON-RPC 2.0.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select

from omc.core.config import Settings
from omc.core.http import HttpError
from omc.core.masking import url_origin
from omc.ledgers.collectors.base import CollectorRunner, RunSummary
from omc.ledgers.glass.defillama import (
    DefiLlamaCollector,
    ProtocolItem,
    day_start,
    epoch_seconds,
    headline_tvl,
    split_chain_key,
)
from omc.ledgers.glass.onchain import OnchainCollector
from omc.ledgers.models import (
    CollectorRun,
    OnchainMetric,
    ProtocolLatest,
    ProtocolMetric,
    QuarantinedItem,
)
from tests.fakes.defillama_server import (
    DAYS,
    LAST_DAY,
    FakeDefiLlama,
    Fault,
    generate_protocols,
    running_defillama,
    sample_protocols,
)
from tests.fakes.jsonrpc_server import HEAD_TIMESTAMP, FakeEthereumNode, running_nodes

ROOT = Path(__file__).resolve().parent.parent
T0 = LAST_DAY + timedelta(hours=15, minutes=30)  # 2025-06-01 15:30 UTC
TRACKED = ["uniswap", "eigenlayer", "hyperliquid"]
CHAINS = ["Ethereum", "Arbitrum"]
N_SAMPLE = len(sample_protocols())
FAST = {
    "http_timeout_s": 0.5,
    "http_max_retries": 3,
    "http_backoff_base_s": 0.01,
    "http_backoff_max_s": 0.05,
}


@pytest.fixture
def server() -> Iterator[FakeDefiLlama]:
    yield from running_defillama()


@pytest.fixture
def nodes() -> Iterator[list[FakeEthereumNode]]:
    yield from running_nodes(2)


def settings(server: FakeDefiLlama, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **FAST,
        "defillama_base_url": server.url,
        "defillama_protocols": TRACKED,
        "defillama_chains": CHAINS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def run(
    engine: Engine, server: FakeDefiLlama, clock: Callable[[], datetime] = lambda: T0, **kw: Any
) -> RunSummary:
    collector = DefiLlamaCollector.from_settings(
        settings(server, **kw), rate_per_s=None, clock=clock
    )
    try:
        return CollectorRunner(engine).run(collector)
    finally:
        collector.close()


def rows(engine: Engine, model: Any, **where: Any) -> list[Any]:
    table = model.__table__
    query = select(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def value(
    engine: Engine, model: Any, protocol: str, metric: str, chain: str = "", **kw: Any
) -> Any:
    found = rows(engine, model, protocol=protocol, metric=metric, chain=chain, **kw)
    assert len(found) == 1, (protocol, chain, metric, found)
    return found[0].value


def quarantined(engine: Engine) -> list[Any]:
    return rows(engine, QuarantinedItem)


def assert_record_matches(engine: Engine, summary: RunSummary) -> None:
    (record,) = rows(engine, CollectorRun, id=summary.run_id)
    for name in ("status", "fetched", "inserted", "updated", "duplicates", "quarantined", "error"):
        assert getattr(record, name) == getattr(summary, name), name
    assert record.finished_at is not None


# Items fetched by a clean run: /protocols items, history points (headline + 6 chain keys,
# DAYS + 1 each), fee and revenue chart points, chain TVL points.
HISTORY_POINTS = 7 * (DAYS + 1)
CLEAN_FETCHED = N_SAMPLE + 3 * HISTORY_POINTS + 3 * 2 * DAYS + len(CHAINS) * DAYS


# ---------------------------------------------------------------- pure helpers


def test_chain_keys_split_into_chain_and_category() -> None:
    assert split_chain_key("Ethereum") == ("Ethereum", "tvl")
    assert split_chain_key("Ethereum-staking") == ("Ethereum", "staking")
    assert split_chain_key("Polygon zkEVM-borrowed") == ("Polygon zkEVM", "borrowed")
    assert split_chain_key("Arbitrum-pool2") == ("Arbitrum", "pool2")
    assert split_chain_key("staking") == ("", "staking")
    assert split_chain_key("pool2") == ("", "pool2")
    assert split_chain_key("Hyperliquid L1") == ("Hyperliquid L1", "tvl")


def test_headline_tvl_excludes_borrowed_staking_pool2() -> None:
    item = ProtocolItem.model_validate(
        {
            "slug": "x",
            "tvl": None,
            "chainTvls": {
                "Ethereum": 100.5,
                "Base": "20",
                "Ethereum-borrowed": 1000,
                "borrowed": 1000,
                "Ethereum-staking": 7,
                "staking": 7,
                "Base-pool2": 3,
                "pool2": 3,
            },
        }
    )
    assert headline_tvl(item) == Decimal("120.5")
    eigen = ProtocolItem.model_validate(sample_protocols()[0])  # real: tvl excludes staking
    assert headline_tvl(eigen) == Decimal("8951735130.458426")


def test_dates_are_epoch_seconds() -> None:
    assert epoch_seconds(1_748_736_000) == LAST_DAY
    assert epoch_seconds("1748736000") == LAST_DAY
    with pytest.raises(ValueError, match="epoch seconds"):
        epoch_seconds(1_748_736_000_000)  # milliseconds
    assert day_start(T0) == LAST_DAY and day_start(T0).tzinfo is UTC


# ---------------------------------------------------------------- DeFiLlama: clean runs


def test_clean_run_stores_snapshot_history_fees_and_chain_tvl(
    engine: Engine, server: FakeDefiLlama
) -> None:
    summary = run(engine, server)
    assert summary.status == "ok", summary.error
    assert summary.fetched == CLEAN_FETCHED
    assert summary.quarantined == 0 and summary.duplicates == 0 and summary.updated == 0
    assert summary.inserted == count(engine, ProtocolMetric) + count(engine, ProtocolLatest)
    assert_record_matches(engine, summary)
    paths = server.paths()
    assert paths[0] == "/protocols"
    assert "/summary/fees/hyperliquid?dataType=dailyRevenue" in paths
    assert "/v2/historicalChainTvl/Arbitrum" in paths

    # /protocols: every listed protocol, latest + today's history; Decimal, aware UTC
    latest = rows(engine, ProtocolLatest)
    assert {r.protocol for r in latest} >= {p["slug"] for p in sample_protocols()}
    assert all(isinstance(r.value, Decimal) and r.ts == T0 for r in latest)
    assert value(engine, ProtocolLatest, "eigenlayer", "tvl") == Decimal("8951735130.458426")
    assert value(engine, ProtocolLatest, "eigenlayer", "staking", "Ethereum") == Decimal(
        "522332864.5310426"
    )
    assert value(engine, ProtocolLatest, "eigenlayer", "tvl_change_1d") == Decimal(
        "-11.65410033967217"
    )
    assert value(engine, ProtocolLatest, "eigenlayer", "mcap") == Decimal("336877554.1087164")
    assert not rows(engine, ProtocolLatest, protocol="uniswap-labs", metric="mcap")  # null: skipped
    assert value(engine, ProtocolLatest, "uniswap-labs", "tvl") == Decimal(0)
    today = value(engine, ProtocolMetric, "eigenlayer", "tvl", ts=LAST_DAY)
    assert today == Decimal("8951735130.458426")

    # coins: configured for the slug or its parent, else the payload's symbol
    coins = {r.protocol: r.coins for r in latest if r.metric == "tvl" and r.chain == ""}
    assert coins["uniswap-v3"] == ["UNI"] and coins["uniswap"] == ["UNI"]
    assert coins["eigenlayer"] == ["EIGEN"] and coins["eigenpie"] is None
    assert coins["uniswap-labs"] is None

    # a parent protocol /protocols does not list: headline from currentChainTvls w/o categories
    assert value(engine, ProtocolLatest, "uniswap", "tvl") == Decimal("1000000000")
    assert value(engine, ProtocolLatest, "uniswap", "borrowed", "Ethereum") == Decimal("300000000")
    assert value(engine, ProtocolLatest, "uniswap", "staking") == Decimal("200000000")

    # /protocol/{slug}: one row per day; the intraday point of the last day does not add one
    history = rows(engine, ProtocolMetric, protocol="uniswap", chain="", metric="tvl")
    assert len(history) == DAYS
    assert {r.ts for r in history} == {LAST_DAY - timedelta(days=d) for d in range(DAYS)}
    assert all(r.ts.tzinfo is not None and r.ts.utcoffset() == timedelta(0) for r in history)
    assert (
        len(rows(engine, ProtocolMetric, protocol="uniswap", chain="Ethereum", metric="borrowed"))
        == DAYS
    )
    # fees / revenue: latest totals and the daily chart
    assert value(engine, ProtocolLatest, "hyperliquid", "fees_24h") == Decimal(4890250)
    assert value(engine, ProtocolLatest, "hyperliquid", "revenue_24h") == Decimal(1956100)
    assert value(engine, ProtocolLatest, "hyperliquid", "fees_all_time") == Decimal(499292857)
    assert len(rows(engine, ProtocolMetric, protocol="hyperliquid", metric="fees")) == DAYS
    assert len(rows(engine, ProtocolMetric, protocol="hyperliquid", metric="revenue")) == DAYS
    # whole-chain TVL: protocol ''
    assert len(rows(engine, ProtocolMetric, protocol="", chain="Ethereum", metric="tvl")) == DAYS


def test_rerun_inserts_nothing_and_same_day_keeps_first_history(
    engine: Engine, server: FakeDefiLlama
) -> None:
    first = run(engine, server)
    history, latest = count(engine, ProtocolMetric), count(engine, ProtocolLatest)
    again = run(engine, server)
    assert again.status == "ok"
    assert (again.inserted, again.updated) == (0, 0)
    assert again.duplicates == first.inserted
    assert_record_matches(engine, again)

    # later the same day, TVL moved: latest follows, the day's history row keeps the first
    server.protocols[0]["tvl"] = 9_000_000_000.5
    later = run(engine, server, clock=lambda: T0 + timedelta(hours=3))
    assert later.inserted == 0
    assert later.updated == latest  # every latest row gets the new observation time
    assert (count(engine, ProtocolMetric), count(engine, ProtocolLatest)) == (history, latest)
    assert value(engine, ProtocolLatest, "eigenlayer", "tvl") == Decimal("9000000000.5")
    assert value(engine, ProtocolMetric, "eigenlayer", "tvl", ts=LAST_DAY) == Decimal(
        "8951735130.458426"
    )
    (row,) = rows(engine, ProtocolLatest, protocol="eigenlayer", metric="tvl", chain="")
    assert row.ts == T0 + timedelta(hours=3)

    # the next day: a new history row per snapshot metric, nothing else new
    next_day = run(engine, server, clock=lambda: T0 + timedelta(days=1))
    new_days = rows(engine, ProtocolMetric, ts=LAST_DAY + timedelta(days=1))
    assert next_day.inserted == len(new_days) == latest
    assert value(engine, ProtocolMetric, "eigenlayer", "tvl", ts=LAST_DAY + timedelta(days=1)) == (
        Decimal("9000000000.5")
    )


# ---------------------------------------------------------------- DeFiLlama: faults


def test_transient_faults_are_retried_and_nothing_is_lost(
    engine: Engine, server: FakeDefiLlama
) -> None:
    server.inject(
        Fault("reset", path="/protocols"),
        Fault("delay", path="/protocols", seconds=0.8),
        Fault("http", path="/protocols", status=500),
        Fault("http", path="/protocol/uniswap", status=502),
        Fault("http", path="/summary/fees/hyperliquid", status=503, retry_after="0"),
        Fault("rate_limited", path="/v2/historicalChainTvl/Ethereum", retry_after="0.01"),
    )
    summary = run(engine, server)
    assert summary.status == "ok", summary.error
    assert summary.fetched == CLEAN_FETCHED and summary.quarantined == 0
    assert not server.pending_faults()
    assert summary.inserted == count(engine, ProtocolMetric) + count(engine, ProtocolLatest)
    assert len(rows(engine, ProtocolMetric, protocol="uniswap", chain="", metric="tvl")) == DAYS
    assert_record_matches(engine, summary)


def test_truncated_and_html_bodies_are_quarantined_the_rest_stored(
    engine: Engine, server: FakeDefiLlama
) -> None:
    server.inject(
        Fault("truncated", path="/protocols"),
        Fault("html", path="/protocol/uniswap", status=200),
    )
    summary = run(engine, server)
    assert summary.status == "failed"  # /protocols, the primary output, is missing
    assert summary.quarantined == 2
    assert (summary.error or "").startswith("protocols: bad payload: invalid JSON")
    assert "protocol uniswap: bad payload: an HTML page" in (summary.error or "")
    reasons = sorted(q.reason for q in quarantined(engine))
    assert reasons[0].startswith("protocol uniswap: an HTML page")
    assert reasons[1].startswith("protocols: invalid JSON")
    assert any(q.payload.startswith("<!doctype html>") for q in quarantined(engine))
    # the other parts are all there
    assert not rows(engine, ProtocolLatest, protocol="eigenpie")
    assert len(rows(engine, ProtocolMetric, protocol="eigenlayer", chain="", metric="tvl")) == DAYS
    assert len(rows(engine, ProtocolMetric, protocol="hyperliquid", metric="fees")) == DAYS
    assert_record_matches(engine, summary)
    # the next run recovers everything, and adds no duplicates
    after = run(engine, server)
    assert after.status == "ok"
    assert rows(engine, ProtocolLatest, protocol="eigenpie")
    assert len(rows(engine, ProtocolMetric, protocol="uniswap", chain="", metric="tvl")) == DAYS


def test_a_failing_part_makes_the_run_partial(engine: Engine, server: FakeDefiLlama) -> None:
    summary = run(engine, server, defillama_chains=["Ethereum", "Atlantis"])
    assert summary.status == "partial"
    assert (
        summary.error
        == "chain Atlantis: defillama: HTTP 404 on GET /v2/historicalChainTvl/Atlantis"
    )
    assert summary.quarantined == 0
    assert len(rows(engine, ProtocolMetric, protocol="", chain="Ethereum")) == DAYS
    assert_record_matches(engine, summary)


def test_every_request_failing_fails_the_run_clearly(engine: Engine, server: FakeDefiLlama) -> None:
    server.inject(*[Fault("http", status=503) for _ in range(100)])
    failed = run(engine, server, http_max_retries=1, defillama_protocols=[], defillama_chains=[])
    assert failed.status == "failed"
    assert failed.error == (
        "defillama: every request failed: "
        "protocols: defillama: HTTP 503 on GET /protocols after 2 attempts"
    )
    assert count(engine, ProtocolMetric) == count(engine, ProtocolLatest) == 0
    assert_record_matches(engine, failed)


def drift(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Schema drift and bad items on top of the real sample."""
    items = copy.deepcopy(items)
    eigen, eigenpie, v3, v2, v4, v1, _labs = items
    eigen["tvl"] = str(eigen["tvl"])  # numbers as strings
    eigen["chainTvls"] = {k: str(v) for k, v in eigen["chainTvls"].items()}
    eigen["brandNewField"] = {"nested": [1, 2]}  # extra fields
    eigenpie["change_1d"] = eigenpie["mcap"] = None  # nulls
    for key in ("change_1h", "change_7d", "mcap", "symbol", "parentProtocol"):
        v3.pop(key, None)  # missing optional fields
    v2["chainTvls"] = None  # null chain breakdown, headline still there
    v4["tvl"] = None  # headline from plain chains only
    v4["chainTvls"]["Ethereum-borrowed"] = 5e8
    v4["chainTvls"]["borrowed"] = 5e8
    bad = [
        {k: v for k, v in v1.items() if k not in ("slug", "name")},
        {**v1, "slug": "tvl-text", "tvl": "n/a"},
        {**v1, "slug": "tvl-negative", "tvl": -5},
        {**v1, "slug": "no-tvl", "tvl": None, "chainTvls": {}},
        {**v1, "slug": "chain-negative", "chainTvls": {"Ethereum": -1.0}},
        ["not", "an", "object"],
    ]
    return [*items, copy.deepcopy(eigen), *bad]  # eigenlayer listed twice


def test_schema_drift_and_bad_items(engine: Engine, server: FakeDefiLlama) -> None:
    server.inject(Fault("mutate", path="/protocols", fn=drift))
    summary = run(engine, server, defillama_protocols=[], defillama_chains=[])
    assert summary.status == "partial"
    assert summary.fetched == N_SAMPLE + 1 + 6
    assert summary.quarantined == 6
    reasons = sorted(q.reason for q in quarantined(engine))
    assert reasons == sorted(
        [
            "protocol None: slug: Field required",  # neither slug nor name
            "protocol 'tvl-text': tvl: Value error, not a decimal number: 'n/a'",
            "protocol 'tvl-negative': negative tvl -5",
            "protocol 'no-tvl': no TVL (tvl null and no chainTvls)",
            "protocol 'chain-negative': negative chainTvls Ethereum",
            "protocols: item is not an object",
        ]
    )
    # every good item stored, once
    tvl = {r.protocol: r.value for r in rows(engine, ProtocolLatest, metric="tvl", chain="")}
    assert set(tvl) == {p["slug"] for p in sample_protocols()}
    assert tvl["eigenlayer"] == Decimal("8951735130.458426")
    v4 = next(p for p in sample_protocols() if p["slug"] == "uniswap-v4")
    plain = sum((Decimal(repr(v)) for v in v4["chainTvls"].values()), Decimal(0))
    assert tvl["uniswap-v4"] == plain  # the added borrowed money is not in the headline
    assert value(engine, ProtocolLatest, "uniswap-v4", "borrowed", "Ethereum") == Decimal("5E+8")
    assert not rows(engine, ProtocolLatest, protocol="uniswap-v2", chain="Ethereum")
    assert not rows(engine, ProtocolLatest, protocol="eigenpie", metric="mcap")
    assert rows(engine, ProtocolLatest, protocol="uniswap-v3", metric="tvl_change_1d")
    assert not rows(engine, ProtocolLatest, protocol="uniswap-v3", metric="tvl_change_1h")
    assert_record_matches(engine, summary)
    # the same bad payload again only counts occurrences
    server.inject(Fault("mutate", path="/protocols", fn=drift))
    again = run(engine, server, defillama_protocols=[], defillama_chains=[])
    assert again.inserted == 0 and again.quarantined == 6
    assert len(quarantined(engine)) == 6
    assert {q.occurrences for q in quarantined(engine)} == {2}


def test_protocols_without_slug_get_the_slug_defillama_derives(
    engine: Engine, server: FakeDefiLlama
) -> None:
    for item in server.protocols:  # an older API shape: no `slug` at all
        del item["slug"]
    server.protocols.append({**server.protocols[0], "name": "Curve's Pool"})
    summary = run(engine, server, defillama_protocols=[], defillama_chains=[])
    assert (summary.status, summary.quarantined) == ("ok", 0)
    tvl = {r.protocol for r in rows(engine, ProtocolLatest, metric="tvl", chain="")}
    assert tvl == {p["slug"] for p in sample_protocols()} | {"curves-pool"}


def test_a_fully_quarantined_protocols_snapshot_fails_the_run(
    engine: Engine, server: FakeDefiLlama
) -> None:
    for item in server.protocols:  # renamed fields: no TVL anywhere
        item["totalValueLocked"] = item.pop("tvl")
        item["chainTvl"] = item.pop("chainTvls")
    summary = run(engine, server)  # histories, fees and chains are all fine
    assert summary.status == "failed"
    assert summary.error is not None and summary.error.startswith(
        f"no protocols stored: all {N_SAMPLE} quarantined: "
    )
    assert "no TVL (tvl null and no chainTvls)" in summary.error
    assert summary.inserted > 0  # the good parts are still stored
    assert_record_matches(engine, summary)


def test_an_empty_protocols_snapshot_fails_the_run(engine: Engine, server: FakeDefiLlama) -> None:
    server.protocols = []
    summary = run(engine, server)
    assert summary.status == "failed"
    assert summary.error == "protocols: empty snapshot (DeFiLlama never lists no protocols)"
    assert_record_matches(engine, summary)


def spoil_history(body: dict[str, Any]) -> dict[str, Any]:
    points = body["tvl"]
    body["tvl"] = [
        *points,
        *points[:5],  # the same days again (a duplicate page)
        {"date": 1_748_736_000_000, "totalLiquidityUSD": 1.0},  # milliseconds
        {"date": 1_748_649_600, "totalLiquidityUSD": None},
        {"date": 1_748_649_600, "totalLiquidityUSD": "lots"},
        {"date": 1_748_649_600, "totalLiquidityUSD": -3},
        {"totalLiquidityUSD": 5},
        {"date": str(int(LAST_DAY.timestamp()) + 86_400), "totalLiquidityUSD": "7", "x": 1},
    ]
    return body


def test_bad_history_points_are_quarantined_duplicates_dropped(
    engine: Engine, server: FakeDefiLlama
) -> None:
    server.inject(Fault("mutate", path="/protocol/uniswap", fn=spoil_history))
    summary = run(engine, server, defillama_protocols=["uniswap"], defillama_chains=[])
    assert summary.status == "partial"
    assert summary.quarantined == 5
    reasons = sorted(q.reason for q in quarantined(engine))
    assert reasons == [
        "protocol uniswap tvl: date 1748736000000 is not in epoch seconds (2009..2100)",
        "protocol uniswap tvl: missing 'date'",
        "protocol uniswap tvl: negative value -3",
        "protocol uniswap tvl: not a decimal number: 'lots'",
        "protocol uniswap tvl: value is null",
    ]
    history = rows(engine, ProtocolMetric, protocol="uniswap", chain="", metric="tvl")
    assert len(history) == DAYS + 1  # 30 days + the day after (date as a string)
    assert max(r.ts for r in history) == LAST_DAY + timedelta(days=1)
    assert_record_matches(engine, summary)


def test_large_payload_all_stored_headline_without_categories(
    engine: Engine, server: FakeDefiLlama
) -> None:
    generated = generate_protocols(1500)
    for item in generated[::2]:
        item["tvl"] = None  # headline computed from the plain chains
    server.extra_protocols = generated
    summary = run(engine, server, defillama_protocols=[], defillama_chains=[])
    assert summary.status == "ok" and summary.fetched == N_SAMPLE + 1500
    headline = {r.protocol: r.value for r in rows(engine, ProtocolLatest, metric="tvl", chain="")}
    assert len(headline) == N_SAMPLE + 1500
    with_categories = 0
    for item in generated:
        plain = [v for k, v in item["chainTvls"].items() if split_chain_key(k)[1] == "tvl"]
        assert len(plain) == len(item["chains"])
        expected = sum((Decimal(repr(v)) for v in plain), Decimal(0))
        if item["tvl"] is not None:
            expected = Decimal(repr(item["tvl"]))
        assert abs(headline[item["slug"]] - expected) < Decimal("0.001"), item["slug"]
        with_categories += len(item["chainTvls"]) > len(plain)
    assert with_categories > 250
    history = count(engine, ProtocolMetric)
    assert summary.inserted == history + count(engine, ProtocolLatest)
    assert run(engine, server, defillama_protocols=[], defillama_chains=[]).inserted == 0


# ---------------------------------------------------------------- on-chain JSON-RPC


def onchain(urls: list[str], **overrides: Any) -> OnchainCollector:
    values: dict[str, Any] = {**FAST, "http_max_retries": 1, "ethereum_rpc_urls": urls}
    values.update(overrides)
    return OnchainCollector.from_settings(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def run_onchain(engine: Engine, urls: list[str]) -> RunSummary:
    collector = onchain(urls)
    try:
        return CollectorRunner(engine).run(collector)
    finally:
        collector.close()


def test_onchain_basics_are_stored(engine: Engine, nodes: list[FakeEthereumNode]) -> None:
    summary = run_onchain(engine, [nodes[0].url, nodes[1].url])
    assert summary.status == "ok" and summary.inserted == 4
    stored = {r.metric: r for r in rows(engine, OnchainMetric)}
    head = datetime.fromtimestamp(HEAD_TIMESTAMP, UTC)
    assert {r.ts for r in stored.values()} == {head}
    assert stored["block_height"].value == Decimal(22_600_000)
    assert stored["gas_price_gwei"].value == Decimal("1.23456789")
    assert stored["tx_per_block"].value == Decimal(157)
    assert stored["base_fee_gwei"].value == Decimal("0.987654321")
    assert stored["block_height"].endpoint == nodes[0].url
    methods = [r.body["method"] for r in nodes[0].requests]
    assert methods == ["eth_blockNumber", "eth_gasPrice", "eth_getBlockByNumber"]
    assert nodes[0].requests[2].body["params"] == ["latest", False]
    assert not nodes[1].requests
    # the same head again: nothing new; a new head: new rows
    assert run_onchain(engine, [nodes[0].url]).inserted == 0
    nodes[0].height += 1
    nodes[0].timestamp += 12
    assert run_onchain(engine, [nodes[0].url]).inserted == 4
    assert_record_matches(engine, summary)


@pytest.mark.parametrize(
    "spoil",
    ["down", "http500", "rpc_error", "truncated", "html", "wrong_id", "bad_result"],
)
def test_onchain_fails_over_to_the_next_endpoint(
    engine: Engine, nodes: list[FakeEthereumNode], spoil: str
) -> None:
    bad, good = nodes
    first = bad.url
    if spoil == "down":
        bad.stop()
    elif spoil == "http500":
        bad.inject(*[Fault("http", status=500) for _ in range(2)])
    elif spoil == "rpc_error":
        bad.rpc_errors.append({"code": -32005, "message": "daily request count exceeded"})
    elif spoil == "truncated":
        bad.inject(Fault("truncated"))
    elif spoil == "html":
        bad.inject(Fault("html", status=200))
    elif spoil == "wrong_id":
        bad.inject(Fault("mutate", fn=lambda body: {**body, "id": 999}))
    elif spoil == "bad_result":
        bad.inject(Fault("mutate", fn=lambda body: {**body, "result": "twelve"}))
    summary = run_onchain(engine, [first, good.url])
    assert summary.status == "ok", summary.error
    assert {r.endpoint for r in rows(engine, OnchainMetric)} == {good.url}
    assert count(engine, OnchainMetric) == 4
    if spoil != "down":
        assert not bad.pending_faults() and not bad.rpc_errors


def test_onchain_all_endpoints_failing_is_a_clear_error(
    engine: Engine, nodes: list[FakeEthereumNode]
) -> None:
    nodes[0].rpc_errors.append({"code": -32603, "message": "internal error"})
    nodes[1].stop()
    collector = onchain([nodes[0].url, nodes[1].url + "/v3/SECRETKEY"])
    try:
        with pytest.raises(HttpError, match="all 2 JSON-RPC endpoint") as info:
            collector.collect()
    finally:
        collector.close()
    message = str(info.value)
    assert "JSON-RPC error -32603: internal error" in message
    assert "ConnectError" in message and "SECRETKEY" not in message
    summary = run_onchain(engine, ["http://127.0.0.1:9"])
    assert summary.status == "failed" and "all 1 JSON-RPC endpoint(s) failed" in (
        summary.error or ""
    )
    assert count(engine, OnchainMetric) == 0
    assert_record_matches(engine, summary)


def test_public_endpoint_hides_keys() -> None:
    assert url_origin("https://u:p@mainnet.infura.io/v3/abc?key=1") == "https://mainnet.infura.io"
    assert url_origin("http://127.0.0.1:8545/") == "http://127.0.0.1:8545"


# ---------------------------------------------------------------- the CLI, end to end


def test_cli_collect_once_defillama(tmp_path: Path, server: FakeDefiLlama) -> None:
    db = tmp_path / "cli.db"
    env = {
        **os.environ,
        "OMC_DATABASE_URL": f"sqlite:///{db}",
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_DEFILLAMA_BASE_URL": server.url,
        "OMC_DEFILLAMA_PROTOCOLS": "hyperliquid",
        "OMC_DEFILLAMA_CHAINS": "Ethereum",
        "OMC_HTTP_BACKOFF_BASE_S": "0.01",
        "OMC_HTTP_TIMEOUT_S": "0.5",
    }
    server.inject(Fault("http", path="/protocols", status=502))
    done = subprocess.run(
        [sys.executable, "-m", "omc", "collect", "--once", "defillama"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "defillama: ok" in done.stdout
    engine = create_engine(f"sqlite:///{db}")
    try:
        (record,) = rows(engine, CollectorRun)
        assert record.status == "ok" and record.inserted > 0 and record.quarantined == 0
        assert f"inserted={record.inserted}" in done.stdout
        assert len(rows(engine, ProtocolMetric, protocol="hyperliquid", metric="fees")) == DAYS
        assert len(rows(engine, ProtocolMetric, protocol="", chain="Ethereum")) == DAYS
        assert rows(engine, ProtocolLatest, protocol="eigenlayer", metric="tvl")
    finally:
        engine.dispose()


def test_an_unresolvable_host_fails_the_run_at_once_with_one_message(engine: Engine) -> None:
    """Offline: one request, no retries, one clear error — not one per protocol and chain."""
    config = Settings(  # type: ignore[call-arg]
        _env_file=None,
        **{**FAST, "http_max_retries": 4, "http_backoff_base_s": 1.0},
        defillama_base_url="http://omc-nonexistent.invalid",
        defillama_protocols=TRACKED,
        defillama_chains=CHAINS,
    )
    collector = DefiLlamaCollector.from_settings(config, rate_per_s=None, clock=lambda: T0)
    started = time.monotonic()
    try:
        failed = CollectorRunner(engine).run(collector)
    finally:
        collector.close()
    assert time.monotonic() - started < 10
    assert collector.client.http.attempts == 1
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith(
        "defillama: cannot reach omc-nonexistent.invalid: host name not resolved (DNS: "
    )
    assert failed.error.endswith("(not retried)") and failed.error.count("cannot reach") == 1
