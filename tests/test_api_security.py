"""Security of every route, on SQLite and PostgreSQL: no token -> 401 on every route but the
public ones; another user's account, paper session, Lab session and backtest -> 404 on every
route that takes one; a non-admin on an admin route -> 403; malformed JSON bodies and a NUL
character -> 422; nothing answers 5xx."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from omc.api.models import JOBS, PAPER_SESSIONS
from omc.core.time import utcnow
from tests.api_support import login

PUBLIC = {
    "/api/v1/health",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/session",
    "/api/v1/auth/logout",
}
ADMIN = re.compile(r"^/api/v1/(collectors|users)")


def routes(client: TestClient) -> list[tuple[str, str]]:
    schema: dict[str, Any] = client.get("/api/v1/openapi.json").json()
    return [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]


def alices_things(client: TestClient) -> dict[str, str]:
    """Alice's account, paper session, Lab session and backtest (stored directly)."""
    from omc.api.services import accounts
    from omc.api.services.lab import LabStudies
    from omc.lab.session.store import save_session

    st = client.app.state.omc  # type: ignore[attr-defined]
    engine, alice = st.engine, 1
    accounts.create(engine, alice, "alice-acct", mode="paper", cash=Decimal(1000))
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            PAPER_SESSIONS.insert().values(
                id="sess-alice",
                owner_id=alice,
                account="alice-acct",
                status="done",
                request={
                    "strategy": "sma_cross",
                    "exchange": "demo",
                    "symbol": "BTC/USDT",
                    "timeframe": "5m",
                },
                bars_done=1,
                bars_total=1,
                created_at=now,
            )
        )
        conn.execute(
            JOBS.insert().values(
                id="job-alice",
                owner_id=alice,
                status="done",
                request={"strategy": "sma_cross", "symbol": "X", "timeframe": "5m"},
                created_at=now,
            )
        )
    save_session(engine, "L20260101-aaaaaa", goal="g", status="done")
    LabStudies._own(st.lab, alice, "L20260101-aaaaaa")
    return {"name": "alice-acct", "session_id": "sess-alice", "job_id": "job-alice", "id": "1"}


def fill(path: str, ids: dict[str, str]) -> str:
    if path.startswith("/api/v1/lab/sessions/{session_id}"):
        path = path.replace("{session_id}", "L20260101-aaaaaa")
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), path)


def test_every_route_needs_a_token_and_hides_other_users_things(client: TestClient) -> None:
    ids = alices_things(client)
    bob = login(client, "bob")
    checked = 0
    for method, path in routes(client):
        if path in PUBLIC or not path.startswith("/api/v1"):
            continue
        url = fill(path, ids)
        if path == "/api/v1/stream":
            url += "?timeout_s=0.1"
        anonymous = client.request(method, url, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        assert anonymous.json()["error"]["code"] == "not_authenticated"
        if "{" in path and not ADMIN.match(path) and not path.startswith("/api/v1/credentials"):
            res = client.request(method, url, json={}, headers=bob)
            assert res.status_code in (404, 422), (method, path, res.status_code)
            if res.status_code == 422:  # the body was checked first: send a valid-looking one
                res = client.request(method, url, json=_body(path), headers=bob)
                assert res.status_code == 404, (method, path, res.status_code, res.text)
        if ADMIN.match(path):
            res = client.request(method, url, json={}, headers=bob)
            assert res.status_code == 403, (method, path, res.status_code)
        checked += 1
    assert checked > 40


def _body(path: str) -> dict[str, Any]:
    if path.endswith("/kill"):
        return {"on": True, "confirm": "alice-acct"}
    if path.endswith("/sessions"):
        return {"strategy": "sma_cross", "exchange": "demo", "symbol": "BTC/USDT"}
    if path.endswith("/answer"):
        return {"answer": "BTC"}
    if path.endswith("/revise"):
        return {"instructions": "more trials"}
    return {}


def test_malformed_input_is_422_never_500(client: TestClient) -> None:
    alice = login(client, "alice")
    client.post("/api/v1/accounts", json={"name": "alice-x"}, headers=alice)
    writes = [
        (m, p)
        for m, p in routes(client)
        if m in ("POST", "PUT") and p not in PUBLIC and "logout" not in p and "disable" not in p
    ]
    ids = {"name": "alice-x", "session_id": "nope", "job_id": "nope", "id": "1"}
    for method, path in writes:
        url = fill(path, ids)
        for raw in (b"{not json", b"[1, 2, 3]", b'{"name": 5, "on": "maybe", "cash": "abc"}'):
            res = client.request(
                method, url, content=raw, headers={**alice, "content-type": "application/json"}
            )
            assert res.status_code < 500, (method, path, raw, res.status_code)
            assert res.status_code in (404, 409, 422, 202, 200, 201, 403), (
                method,
                path,
                raw,
                res.status_code,
            )
    nul = client.post("/api/v1/accounts", json={"name": "a\u0000b"}, headers=alice)
    assert nul.status_code == 422
    assert client.get("/api/v1/ledgers/news?coin=%00", headers=alice).status_code == 422
    bad = client.post("/api/v1/accounts", json={"name": "../etc", "cash": "-5"}, headers=alice)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
