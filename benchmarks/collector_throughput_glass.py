"""Collect throughput of the DeFiLlama collector: parse + store a large `/protocols` payload.

    python benchmarks/collector_throughput_glass.py [--sizes 1000,5000,20000]

For each size, a `/protocols` body of that many protocols (generated like the real sample:
several chains each, some with `-staking` / `-borrowed` / `-pool2` keys) is served through an
in-process httpx transport (no network), and one collector run is timed on a fresh SQLite
file: `parse` = HTTP body -> JSON -> validated rows (`collect()`), `store` = the runner's
upsert of history + latest rows and its run record. A second run on the same day (every row
already stored: history duplicates, latest rows updated) is timed too. Prints a small table;
items/s counts protocols, rows/s the rows written to both tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omc.core.config import Settings  # noqa: E402
from omc.core.db import make_engine  # noqa: E402
from omc.core.upsert import upsert  # noqa: E402
from omc.ledgers.collectors.base import CollectorRunner  # noqa: E402
from omc.ledgers.glass.defillama import DefiLlamaCollector  # noqa: E402
from omc.migrations import upgrade  # noqa: E402
from tests.fakes.defillama_server import generate_protocols  # noqa: E402

NOW = datetime(2025, 6, 1, 15, 30, tzinfo=UTC)


def make_collector(body: bytes) -> DefiLlamaCollector:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        defillama_base_url="http://defillama.bench",
        defillama_protocols=[],
        defillama_chains=[],
    )
    return DefiLlamaCollector.from_settings(
        settings, rate_per_s=None, transport=httpx.MockTransport(handler), clock=lambda: NOW
    )


def measure(size: int, workdir: Path) -> dict[str, Any]:
    body = json.dumps(generate_protocols(size)).encode()
    engine = make_engine(f"sqlite:///{workdir / f'glass_{size}.db'}")
    upgrade(engine)
    collector = make_collector(body)
    try:
        started = time.perf_counter()
        collected = collector.collect()
        parse_s = time.perf_counter() - started
        rows = sum(len(batch.rows) for batch in collected.rows)
        started = time.perf_counter()
        with engine.begin() as conn:
            for batch in collected.rows:
                upsert(conn, batch.table, batch.rows, update=batch.update)
        store_s = time.perf_counter() - started
        # the whole run again, as the scheduler does it: everything is already stored
        started = time.perf_counter()
        summary = CollectorRunner(engine).run(collector)
        rerun_s = time.perf_counter() - started
    finally:
        collector.close()
        engine.dispose()
    assert summary.inserted == 0 and summary.status == "ok", summary
    total = parse_s + store_s
    return {
        "protocols": size,
        "payload_mb": len(body) / 1e6,
        "rows": rows,
        "parse_s": parse_s,
        "store_s": store_s,
        "items_per_s": size / total,
        "rows_per_s": rows / total,
        "rerun_s": rerun_s,
        "rerun_items_per_s": size / rerun_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000", help="protocols per payload")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(size, Path(tmp)) for size in sizes]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    header = (
        f"{'protocols':>9} {'MB':>6} {'rows':>8} {'parse s':>8} {'store s':>8} "
        f"{'items/s':>9} {'rows/s':>9} {'re-run s':>9} {'re-run items/s':>14}"
    )
    print("DeFiLlama /protocols: parse + store on SQLite (first run; re-run = same day)")
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['protocols']:>9} {r['payload_mb']:>6.1f} {r['rows']:>8} {r['parse_s']:>8.2f} "
            f"{r['store_s']:>8.2f} {r['items_per_s']:>9.0f} {r['rows_per_s']:>9.0f} "
            f"{r['rerun_s']:>9.2f} {r['rerun_items_per_s']:>14.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
