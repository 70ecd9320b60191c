"""The ledger feeds over the API, on SQLite and PostgreSQL: each read is point-in-time (a row
stored after `as_of` is invisible), newest first, paged with a cursor that keeps the first
page's `as_of`; ticks and metrics are exact; freshness per collector and per table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.api_support import login
from tests.test_pit import EARLY, LATE, seed

FEEDS = {  # path -> (time column, a filter that keeps every seeded row)
    "ticks": ("ts", "coin=eth"),
    "protocols": ("ts", "protocol=lido"),
    "onchain": ("ts", "chain=ethereum"),
    "news": ("published_at", "coin=ETH"),
    "social": ("published_at", "platform=reddit"),
}


def _iso(moment: Any) -> str:
    return str(moment.isoformat()).replace("+00:00", "Z")


def test_feeds_are_point_in_time_and_paged(client: TestClient) -> None:
    seed(client.app.state.omc.engine)  # type: ignore[attr-defined]
    bob = login(client, "bob")
    between, after = _iso(EARLY + timedelta(minutes=1)), _iso(LATE + timedelta(minutes=1))
    for path, (column, keep) in FEEDS.items():
        base = f"/api/v1/ledgers/{path}?{keep}"
        early = client.get(f"{base}&as_of={between}", headers=bob)
        assert early.status_code == 200, (path, early.text)
        assert len(early.json()["items"]) == 1, path
        first = client.get(f"{base}&as_of={after}&limit=1", headers=bob).json()
        assert len(first["items"]) == 1 and first["next_cursor"], path
        second = client.get(f"{base}&limit=1&cursor={first['next_cursor']}", headers=bob).json()
        assert second["as_of"] == first["as_of"] and second["next_cursor"] is None, path
        newer, older = first["items"][0][column], second["items"][0][column]
        assert newer > older, path  # newest first
        oldest = client.get(f"{base}&as_of={after}&order=asc", headers=bob).json()["items"]
        assert [i[column] for i in oldest] == [older, newer], path
        ranged = client.get(f"{base}&as_of={after}&end={older}", headers=bob).json()
        assert [i[column] for i in ranged["items"]] == [older], path
    ticks = client.get(f"/api/v1/ledgers/ticks?as_of={after}", headers=bob).json()["items"]
    assert ticks[0]["bid"] == "1" and ticks[0]["ask"] == "1.01"  # exact decimals
    events = client.get(f"/api/v1/ledgers/events?kind=listing&as_of={between}", headers=bob)
    assert [e["title"] for e in events.json()["items"]] == ["PEPE listed"]
    later = client.get(f"/api/v1/ledgers/events?as_of={after}", headers=bob).json()["items"]
    assert [e["title"] for e in later] == ["PEPE listed (edited)"]
    none = client.get("/api/v1/ledgers/sentiment?coin=DOGE", headers=bob)
    assert none.status_code == 200 and none.json()["items"] == []
    bad = client.get("/api/v1/ledgers/news?cursor=WzEsMl0", headers=bob)  # not ours
    assert bad.status_code == 422
    wrong_order = client.get("/api/v1/ledgers/news?order=sideways", headers=bob)
    assert wrong_order.status_code == 422


def test_freshness(client: TestClient) -> None:
    seed(client.app.state.omc.engine)  # type: ignore[attr-defined]
    bob = login(client, "bob")
    res = client.get("/api/v1/ledgers/freshness", headers=bob)
    assert res.status_code == 200, res.text
    body = res.json()
    states = {c["collector"]: c["freshness"] for c in body["collectors"]}
    assert states and set(states.values()) == {"missing"}  # no collector ever ran
    ticks = next(t for t in body["tables"] if t["table"] == "ticks")
    assert ticks["rows"] == 2 and ticks["last"].startswith("2024-03-01T12:01")


def test_alerts_and_deliveries(client: TestClient) -> None:
    from datetime import UTC, datetime

    from omc.core.upsert import upsert
    from omc.ledgers.models import Alert

    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    upsert(engine, Alert.__table__, [
        {"source": "announcements", "event_id": str(i), "kind": kind, "coin": "",
         "title": f"{kind} {i}", "coins": coins, "url": None, "published_at": now,
         "raised_at": now, "deliveries": {"telegram": {"status": status, "at": now.isoformat(),
                                                       "error": err}}}
        for i, (kind, coins, status, err) in enumerate([
            ("listing", ["PEPE"], "ok", None), ("delisting", ["DOGE"], "failed", "HTTP 500"),
            ("listing", ["WIF"], "pending", None)])
    ])  # fmt: skip
    bob = login(client, "bob")
    page = client.get("/api/v1/alerts?limit=2", headers=bob).json()
    assert [a["title"] for a in page["items"]] == ["listing 2", "delisting 1"]
    rest = client.get(f"/api/v1/alerts?cursor={page['next_cursor']}", headers=bob).json()
    assert [a["title"] for a in rest["items"]] == ["listing 0"] and rest["next_cursor"] is None
    listings = client.get("/api/v1/alerts?kind=listing&coin=pepe", headers=bob).json()["items"]
    assert [a["title"] for a in listings] == ["listing 0"]
    failed = client.get("/api/v1/alerts/deliveries?status=failed", headers=bob).json()["items"]
    assert [(d["title"], d["notifier"], d["error"]) for d in failed] == [
        ("delisting 1", "telegram", "HTTP 500")
    ]


def test_collectors_are_for_admins(client: TestClient) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")  # alice is the admin
    assert client.get("/api/v1/collectors", headers=bob).status_code == 403
    assert client.post("/api/v1/collectors/reddit/pause", headers=bob).status_code == 403
    listed = client.get("/api/v1/collectors", headers=alice).json()["items"]
    assert {c["collector"] for c in listed} >= {"coinspot", "reddit"}
    assert not any(c["paused"] for c in listed)
    res = client.post("/api/v1/collectors/reddit/pause", json={"reason": "rate limited"},
                      headers=alice)  # fmt: skip
    assert res.status_code == 200 and res.json()["status"] == "paused"
    reddit = next(
        c
        for c in client.get("/api/v1/collectors", headers=alice).json()["items"]
        if c["collector"] == "reddit"
    )
    assert reddit["paused"] and reddit["paused_reason"] == "rate limited"
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    from omc.ledgers.collectors.controls import is_paused

    assert is_paused(engine, "reddit")  # what `omc collect`'s scheduler reads
    assert client.post("/api/v1/collectors/reddit/resume", headers=alice).status_code == 200
    assert not is_paused(engine, "reddit")
    assert client.post("/api/v1/collectors/nope/pause", headers=alice).status_code == 404
    runs = client.get("/api/v1/collectors/coinspot/runs", headers=alice).json()
    assert runs == {"items": [], "next_cursor": None}
    quarantine = client.get("/api/v1/collectors/quarantine", headers=alice).json()
    assert quarantine["items"] == []
