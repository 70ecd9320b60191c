"""The Floor over the API, on SQLite and PostgreSQL: accounts owned per user (another user's
account answers 404), a paper session on replayed candles run by the server with the same
result as `omc trade paper --replay`, its positions/orders/fills/P&L/journal, Guard limits
changed (audited, used by the next session) and the kill switch stopping a running session."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from omc.api.models import AUDIT
from tests.api_support import login, run_omc
from tests.test_api_backtests import CSV, import_candles

ROWS = 1200
SESSION = {
    "strategy": "sma_cross",
    "params": {"fast": 10, "slow": 30},
    "exchange": "demo",
    "symbol": "BTC/USDT",
    "timeframe": "5m",
}


def wait_session(client: TestClient, sid: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        res = client.get(f"/api/v1/sessions/{sid}", headers=headers)
        assert res.status_code == 200, res.text
        body: dict[str, Any] = res.json()
        if body["status"] not in ("queued", "running", "paused"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def create_account(client: TestClient, headers: dict[str, str], name: str) -> None:
    res = client.post("/api/v1/accounts", json={"name": name, "cash": "10000"}, headers=headers)
    assert res.status_code == 201, res.text


def test_paper_session_over_api_matches_cli_replay(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    env = import_candles(db_url, tmp_path, rows=ROWS)
    alice, bob = login(client, "alice"), login(client, "bob")
    create_account(client, alice, "alice-paper")
    taken = client.post("/api/v1/accounts", json={"name": "alice-paper"}, headers=bob)
    assert taken.status_code == 409
    assert client.get("/api/v1/accounts/alice-paper", headers=bob).status_code == 404
    assert client.get("/api/v1/accounts", headers=bob).json()["items"] == []

    res = client.post("/api/v1/accounts/alice-paper/sessions", json=SESSION, headers=alice)
    assert res.status_code == 202, res.text
    sid = res.json()["id"]
    assert client.get(f"/api/v1/sessions/{sid}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/sessions/{sid}/stop", headers=bob).status_code == 404
    done = wait_session(client, sid, alice)
    assert done["status"] == "done", done
    assert done["bars_done"] == done["bars_total"] == ROWS

    # the same candles through `omc trade paper --replay`
    part = tmp_path / "btc.csv"
    part.write_text("\n".join(CSV.read_text().splitlines()[: ROWS + 1]) + "\n")
    cli = run_omc(
        ["trade", "paper", "--strategy", "sma_cross", "--param", "fast=10", "--param",
         "slow=30", "--replay", str(part), "--account", "cli-paper", "--cash", "10000",
         "--json"],
        env,
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout[cli.stdout.index("{") :])

    pnl = client.get("/api/v1/accounts/alice-paper/pnl", headers=alice).json()
    assert pnl["equity"] == expected["equity"] and pnl["trades"] == expected["trades"] > 0
    assert pnl["realised_pnl"] == expected["realised_pnl"]
    assert pnl["equity_series"] and pnl["equity_series"][-1]["equity"] == pnl["equity"]
    assert done["summary"]["equity"] == pnl["equity"]

    fills = client.get("/api/v1/accounts/alice-paper/fills?limit=2", headers=alice).json()
    assert len(fills["items"]) == 2 and fills["next_cursor"]
    rest = client.get(
        f"/api/v1/accounts/alice-paper/fills?limit=1000&cursor={fills['next_cursor']}",
        headers=alice,
    ).json()
    assert len(fills["items"]) + len(rest["items"]) == pnl["trades"]
    assert fills["items"][0]["seq"] > fills["items"][1]["seq"] > rest["items"][0]["seq"]

    orders = client.get("/api/v1/accounts/alice-paper/orders", headers=alice).json()["items"]
    assert orders and all("signals" in (o["reason"] or {}) for o in orders)
    positions = client.get("/api/v1/accounts/alice-paper/positions", headers=alice).json()
    numbers = ("quantity", "avg_cost", "mark", "value", "unrealised")
    assert [{k: p[k] for k in numbers} for p in positions["items"]] == [
        {k: str(p[k]) for k in numbers} for p in expected["positions"]
    ]
    journal = client.get(
        "/api/v1/accounts/alice-paper/journal?kind=decision&limit=5", headers=alice
    ).json()
    assert len(journal["items"]) == 5 and journal["items"][0]["kind"] == "decision"
    assert "signals" in journal["items"][0]["data"] and "targets" in journal["items"][0]["data"]
    for path in ("pnl", "fills", "orders", "positions", "journal", "limits", "kill", "sessions"):
        assert client.get(f"/api/v1/accounts/alice-paper/{path}", headers=bob).status_code == 404
    listed = client.get("/api/v1/accounts", headers=alice).json()["items"]
    assert [a["name"] for a in listed] == ["alice-paper"] and listed[0]["equity"] == pnl["equity"]


def test_limits_and_kill_switch_stop_a_running_session(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    import_candles(db_url, tmp_path, rows=600)
    alice = login(client, "alice")
    create_account(client, alice, "alice-kill")
    base = "/api/v1/accounts/alice-kill"
    limits = client.get(f"{base}/limits", headers=alice).json()
    assert limits["overridden"] == [] and limits["limits"]["max_order_notional"] == "5000"
    res = client.put(f"{base}/limits", json={"max_order_notional": "2500"}, headers=alice)
    assert res.status_code == 200, res.text
    assert res.json()["limits"]["max_order_notional"] == "2500"
    assert res.json()["overridden"] == ["max_order_notional"]
    for bad in ({"max_order_notional": "-1"}, {"no_such_limit": 1}, {"max_open_positions": "x"}):
        assert client.put(f"{base}/limits", json=bad, headers=alice).status_code == 422, bad
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        entry = conn.execute(
            select(AUDIT.c.detail).where(AUDIT.c.action == "limits_changed")
        ).scalar_one()
    assert entry == {
        "account": "alice-kill",
        "changes": {"max_order_notional": {"from": "5000", "to": "2500"}},
    }

    slow = {**SESSION, "bars_per_second": 60}
    sid = client.post(f"{base}/sessions", json=slow, headers=alice).json()["id"]
    busy = client.post(f"{base}/sessions", json=slow, headers=alice)
    assert busy.status_code == 409
    deadline = time.monotonic() + 30
    while not client.get(f"{base}/positions", headers=alice).json()["items"]:
        assert time.monotonic() < deadline  # a fill arrives while the replay runs
        time.sleep(0.1)
    wrong = client.post(f"{base}/kill", json={"on": True, "confirm": "nope"}, headers=alice)
    assert wrong.status_code == 422
    killed = client.post(
        f"{base}/kill", json={"on": True, "flatten": True, "confirm": "alice-kill"}, headers=alice
    )
    assert killed.status_code == 200, killed.text
    assert killed.json()["active"] is True and killed.json()["acknowledged"] is True
    stopped = wait_session(client, sid, alice)
    assert stopped["status"] == "stopped" and "kill switch" in stopped["summary"]["stopped"]
    assert stopped["bars_done"] < 600
    left = client.get(f"{base}/positions", headers=alice).json()["items"]
    assert all(Decimal(p["value"]) < 1 for p in left), left  # flat (dust below the step stays)
    assert client.get(f"{base}/kill", headers=alice).json()["active"] is True
    refused = client.post(f"{base}/sessions", json=slow, headers=alice)
    assert refused.status_code == 409 and "kill switch" in refused.json()["error"]["message"]
    cleared = client.post(
        f"{base}/kill", json={"on": False, "confirm": "alice-kill"}, headers=alice
    )
    assert cleared.status_code == 200 and cleared.json()["active"] is False
    with engine.connect() as conn:
        actions = list(conn.execute(select(AUDIT.c.action)).scalars())
    assert actions.count("kill_on") == 1 and actions.count("kill_off") == 1
    # the journal shows the kill, with the decision trail before it
    kinds = [e["kind"] for e in client.get(f"{base}/journal", headers=alice).json()["items"]]
    assert "kill" in kinds and "decision" in kinds and "order" in kinds


def read_stream(
    client: TestClient, headers: dict[str, str], seconds: float, until: str | None = None
) -> list[tuple[str, Any]]:
    """The (event, data) pairs of `/stream` for `seconds`, or until an `until` event."""
    found: list[tuple[str, Any]] = []
    with client.stream("GET", f"/api/v1/stream?timeout_s={seconds}", headers=headers) as res:
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in res.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event is not None:
                found.append((event, json.loads(line[6:])))
                if event == until:
                    break
                event = None
    return found


def test_stream_sends_ticks_and_only_the_callers_sessions_orders_fills(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    import threading
    from datetime import UTC, datetime

    from omc.core.upsert import upsert
    from omc.ledgers.models import Tick

    import_candles(db_url, tmp_path, rows=600)
    alice, bob = login(client, "alice"), login(client, "bob")
    create_account(client, alice, "alice-live")
    assert client.get("/api/v1/stream").status_code == 401
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    bobs: list[tuple[str, Any]] = []
    watcher = threading.Thread(target=lambda: bobs.extend(read_stream(client, bob, 4.0)))
    watcher.start()

    def later() -> None:
        time.sleep(0.5)
        now = datetime.now(UTC)
        upsert(
            engine,
            Tick.__table__,
            [
                {
                    "source": "coinspot",
                    "coin": "btc",
                    "market": "aud",
                    "ts": now,
                    "bid": Decimal(1),
                    "ask": Decimal(2),
                    "last": Decimal("1.5"),
                    "volume": None,
                    "collected_at": now,
                }
            ],
        )
        res = client.post(
            "/api/v1/accounts/alice-live/sessions",
            json=SESSION,
            headers=alice,
        )
        assert res.status_code == 202

    starter = threading.Thread(target=later)
    starter.start()
    events = read_stream(client, alice, 60.0, until="fill")
    starter.join()
    watcher.join()
    kinds = {e for e, _ in events}
    assert {"tick", "session", "order", "fill"} <= kinds, events[:8]
    fill = next(d for e, d in events if e == "fill")
    assert fill["account"] == "alice-live" and Decimal(fill["quantity"]) > 0
    assert next(d for e, d in events if e == "tick")["last"] == "1.5"
    assert {e for e, _ in bobs} <= {"tick", "alert"}  # nothing of alice's
    assert any(e == "tick" for e, _ in bobs)
