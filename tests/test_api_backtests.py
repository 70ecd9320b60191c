"""Backtests and ledger reads over the API, on SQLite and PostgreSQL: the contract request,
the same final equity as `omc backtest` on the same imported candles, ownership (404),
pagination, jobs across a restart, malformed input as 422 on every route (never 500)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table

from omc.api.app import create_app
from omc.api.models import JOBS
from omc.core.config import Settings
from omc.core.upsert import upsert
from omc.ledgers import pit
from omc.ledgers.models import Tick
from tests.api_support import api_settings, login, run_omc

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
JOB = {
    "strategy": "sma_cross",
    "params": {"fast": 10, "slow": 30},
    "exchange": "demo",
    "symbol": "BTC/USDT",
    "timeframe": "5m",
    "fee_bps": 10,
    "cash": 10000,
}


def import_candles(db_url: str, tmp_path: Path, rows: int = 2500) -> dict[str, str]:
    """The first `rows` candles of the bundled BTC/USDT file, through `omc data import`."""
    lines = CSV.read_text().splitlines()
    part = tmp_path / "btc.csv"
    part.write_text("\n".join(lines[: rows + 1]) + "\n")
    env = {"OMC_DATABASE_URL": db_url, "OMC_DATA_DIR": str(tmp_path)}
    res = run_omc(
        ["data", "import", str(part), "--exchange", "demo", "--symbol", "BTC/USDT",
         "--timeframe", "5m"],
        env,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return env


def wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        res = client.get(f"/api/v1/backtests/{job_id}", headers=headers)
        assert res.status_code == 200, res.text
        body: dict[str, Any] = res.json()
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_backtest_via_api_equals_omc_backtest(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    env = import_candles(db_url, tmp_path)
    out = tmp_path / "cli"
    cli = run_omc(
        ["backtest", "--symbol", "BTC/USDT", "--exchange", "demo", "--timeframe", "5m",
         "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30",
         "--fee-bps", "10", "--cash", "10000", "--out", str(out)],
        env,
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    expected = json.loads((out / "metrics.json").read_text())
    alice = login(client, "alice")
    created = client.post("/api/v1/backtests", json=JOB, headers=alice)
    assert created.status_code == 202 and created.json()["status"] == "queued"
    job = wait(client, created.json()["id"], alice)
    assert job["status"] == "done", job
    metrics = job["metrics"]
    assert metrics["final_equity"] == expected["final_equity"]
    assert metrics["final_equity_exact"] == expected["final_equity_exact"]
    for key in ("trades", "total_return", "max_drawdown", "fees_paid", "sharpe"):
        assert metrics[key] == expected[key], key
    assert metrics["trades"] > 0 and job["params"] == {"fast": 10, "slow": 30}
    # ownership: bob neither reads nor lists alice's backtest
    bob = login(client, "bob")
    other = client.get(f"/api/v1/backtests/{job['id']}", headers=bob)
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/backtests", headers=bob).json()["items"] == []
    mine = client.get("/api/v1/backtests", headers=alice).json()["items"]
    assert [j["id"] for j in mine] == [job["id"]]
    # the report's series: the CLI's equity.csv and trades.csv, the owner's only
    series = client.get(f"/api/v1/backtests/{job['id']}/series", headers=alice)
    assert series.status_code == 200, series.text
    equity, trades = series.json()["equity"], series.json()["trades"]
    cli_equity = (out / "equity.csv").read_text().splitlines()[1:]
    assert len(equity) == len(cli_equity)
    assert equity[-1]["equity"] == cli_equity[-1].split(",")[1]
    assert min(p["drawdown"] for p in equity) == pytest.approx(expected["max_drawdown"])
    assert len(trades) == len((out / "trades.csv").read_text().splitlines()) - 1
    assert client.get(f"/api/v1/backtests/{job['id']}/series", headers=bob).status_code == 404


def test_missing_candles_fail_the_job_truthfully(client: TestClient) -> None:
    alice = login(client, "alice")
    res = client.post("/api/v1/backtests", json={**JOB, "symbol": "NONE/USDT"}, headers=alice)
    job = wait(client, res.json()["id"], alice)
    assert job["status"] == "failed" and job["metrics"] is None
    assert job["error"] == "no 5m candles for NONE/USDT on demo in the database"


def test_pagination_and_status_filter(client: TestClient) -> None:
    alice = login(client, "alice")
    ids = [
        client.post("/api/v1/backtests", json={**JOB, "symbol": f"X{i}/Y"}, headers=alice).json()[
            "id"
        ]
        for i in range(3)
    ]
    for job_id in ids:
        wait(client, job_id, alice)
    first = client.get("/api/v1/backtests?limit=2", headers=alice).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(
        f"/api/v1/backtests?limit=2&cursor={first['next_cursor']}", headers=alice
    ).json()
    assert rest["next_cursor"] is None
    seen = [j["id"] for j in first["items"] + rest["items"]]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 3
    failed = client.get("/api/v1/backtests?status=failed", headers=alice).json()["items"]
    assert len(failed) == 3
    assert client.get("/api/v1/backtests?status=done", headers=alice).json()["items"] == []


def test_a_running_job_at_restart_is_marked_interrupted(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    table: Table = JOBS
    now = datetime.now(UTC)
    with engine.begin() as conn:
        user = conn.exec_driver_sql("select id from api_users where name = 'alice'").scalar()
        alice_id = int(user)
        conn.execute(
            table.insert(),
            [
                {"id": "cut", "owner_id": alice_id, "status": "running",
                 "request": {**JOB, "cash": "10000", "fee_bps": "10"}, "created_at": now},
                {"id": "waiting", "owner_id": alice_id, "status": "queued",
                 "request": {**JOB, "symbol": "NONE/USDT", "cash": "10000", "fee_bps": "10",
                             "slippage_bps": "0"},
                 "created_at": now},
            ],
        )  # fmt: skip
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    restarted = create_app(settings, api_settings(), engine)
    with TestClient(restarted) as again:
        alice = login(again, "alice")
        cut = again.get("/api/v1/backtests/cut", headers=alice).json()
        assert cut["status"] == "failed" and cut["error"].startswith("interrupted")
        waiting = wait(again, "waiting", alice)  # queued again and run
        assert waiting["status"] == "failed" and "no 5m candles" in waiting["error"]
    restarted.state.omc.jobs.shutdown(wait=True)


MALFORMED_POSTS = [
    ({**JOB, "params": {"fast": "x"}}, "params"),
    ({**JOB, "params": {"nope": 1}}, "params"),
    ({**JOB, "params": {"fast": [1]}}, "params.fast"),
    ({**JOB, "strategy": "rocket"}, "strategy"),
    ({**JOB, "strategy": "/tmp/evil.py:Evil"}, "strategy"),
    ({**JOB, "timeframe": "7x"}, "timeframe"),
    ({**JOB, "cash": -1}, "cash"),
    ({**JOB, "cash": "lots"}, "cash"),
    ({**JOB, "fee_bps": "abc"}, "fee_bps"),
    ({**JOB, "volume_share": 2}, "volume_share"),
    ({**JOB, "extra": 1}, "extra"),
    ({k: v for k, v in JOB.items() if k != "symbol"}, "symbol"),
    ({**JOB, "symbol": "x" * 500}, "symbol"),
    ([JOB], "body"),
]


@pytest.mark.parametrize(("payload", "field"), MALFORMED_POSTS)
def test_malformed_backtests_are_422(client: TestClient, payload: Any, field: str) -> None:
    res = client.post("/api/v1/backtests", json=payload, headers=login(client, "bob"))
    assert res.status_code == 422, res.text
    assert res.json()["error"]["message"].startswith(field), res.json()


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/backtests?limit=0",
        "/api/v1/backtests?limit=abc",
        "/api/v1/backtests?cursor=garbage",
        "/api/v1/backtests?cursor=WzEsMl0",  # a cursor of two values that are not a time
        "/api/v1/backtests?status=lost",
        "/api/v1/ledgers/candles?exchange=demo&symbol=B&timeframe=7x",
        "/api/v1/ledgers/candles?exchange=demo&symbol=B&as_of=2024-01-01T00:00:00",
        "/api/v1/ledgers/candles?exchange=demo&symbol=B&start=yesterday",
        "/api/v1/ledgers/candles?symbol=B",
        "/api/v1/ledgers/candles?exchange=demo&symbol=B&cursor=%%%",
        "/api/v1/ledgers/prices/latest?max_age_s=-5",
        "/api/v1/ledgers/prices/latest?cursor=eyJ4Ijox",
    ],
)
def test_malformed_reads_are_422(client: TestClient, query: str) -> None:
    res = client.get(query, headers=login(client, "bob"))
    assert res.status_code == 422, res.text
    assert res.json()["error"]["code"] == "invalid_input"


def test_candles_point_in_time_and_pages(client: TestClient, db_url: str, tmp_path: Path) -> None:
    import_candles(db_url, tmp_path, rows=120)
    bob = login(client, "bob")
    base = "/api/v1/ledgers/candles?exchange=demo&symbol=BTC/USDT&timeframe=5m"
    pages, url = [], f"{base}&limit=50"
    while url:
        page = client.get(url, headers=bob).json()
        pages.append(page)
        url = f"{base}&limit=50&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert [len(p["items"]) for p in pages] == [50, 50, 20]
    assert len({p["as_of"] for p in pages}) == 1  # later pages keep the first page's as_of
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    stored = pit.candles(engine, "demo", "BTC/USDT", "5m", as_of=datetime.now(UTC), exact=True)
    got = [item for p in pages for item in p["items"]]
    assert [Decimal(i["close"]) for i in got] == list(stored["close"])
    assert got[0]["ts"].startswith("2023-01-02T16:45")
    before = client.get(f"{base}&as_of=2020-01-01T00:00:00Z", headers=bob).json()
    assert before["items"] == []  # nothing was stored yet in 2020
    ranged = client.get(
        f"{base}&start=2023-01-02T17:00:00Z&end=2023-01-02T17:10:00Z", headers=bob
    ).json()
    assert [i["ts"][11:16] for i in ranged["items"]] == ["17:00", "17:05", "17:10"]


def test_latest_prices(client: TestClient) -> None:
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {"source": "coinspot", "coin": coin, "market": "aud", "ts": now - timedelta(seconds=s),
         "bid": Decimal(p) - 1, "ask": Decimal(p) + 1, "last": Decimal(p), "volume": None,
         "collected_at": now - timedelta(seconds=s)}
        for coin, p, s in [("btc", "100.5", 30), ("btc", "101.25", 10), ("eth", "7.125", 5),
                           ("sol", "1.5", 3)]
    ]  # fmt: skip
    upsert(engine, Tick.__table__, rows)
    bob = login(client, "bob")
    page = client.get("/api/v1/ledgers/prices/latest?limit=2", headers=bob).json()
    assert [(i["coin"], i["last"]) for i in page["items"]] == [("btc", "101.25"), ("eth", "7.125")]
    rest = client.get(
        f"/api/v1/ledgers/prices/latest?limit=2&cursor={page['next_cursor']}", headers=bob
    ).json()
    assert [i["coin"] for i in rest["items"]] == ["sol"] and rest["next_cursor"] is None
    early = (now - timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    past = client.get(f"/api/v1/ledgers/prices/latest?coin=btc&as_of={early}", headers=bob)
    assert [i["last"] for i in past.json()["items"]] == ["100.5"]
