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
