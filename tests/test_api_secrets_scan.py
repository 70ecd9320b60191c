"""No stored secret leaks: users log in, save exchange and LLM keys through the API (checked
against local fakes), use them (check, rotate, the Lab's key lookup, a live venue's balances),
provoke errors (refused keys, malformed bodies carrying the secret, other users' ids) — then
every captured log line (caplog at DEBUG and the JSON log output), every response (body and
headers), the event stream alice watched meanwhile and every row of every table is scanned
for the plaintext keys, secrets, passwords and the installation secret: none is found (only
Fernet tokens and argon2 hashes)."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from omc.api import providers
from omc.api.auth.users import find
from omc.api.vault import llm_api_key_for, use
from omc.core.jsonlog import JsonFormatter
from tests.api_support import PASSWORDS, SECRET, login
from tests.fakes.ccxt_exchange_server import API_KEY as BINANCE_KEY
from tests.fakes.ccxt_exchange_server import API_SECRET as BINANCE_SECRET
from tests.fakes.ccxt_exchange_server import fake_binance_trading
from tests.fakes.coinspot_private_server import running_private_coinspot
from tests.fakes.openai_server import API_KEY as OPENAI_KEY
from tests.fakes.openai_server import fake_openai

coinspot_fake = contextmanager(running_private_coinspot)
CS_KEY = "scan-cs-key-4b8d1f3a9c7e5062"
CS_SECRET = "scan-cs-secret-Hq7Jw2Kz9Lp4Mx6N"
CAROL = "carol-scan-Pass-77?"
URL = "/api/v1/credentials"


class Recorder:
    """The test client, keeping every response to scan."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.seen: list[httpx.Response] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        res = self.client.request(method, url, **kwargs)
        self.seen.append(res)
        return res

    def text(self) -> str:
        return "\n".join(f"{r.headers}\n{r.text}" for r in self.seen)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


def stream_text(client: TestClient, headers: dict[str, str], seconds: float) -> str:
    with client.stream("GET", f"/api/v1/stream?timeout_s={seconds}", headers=headers) as res:
        assert res.status_code == 200
        return "\n".join(res.iter_lines())


def database_text(engine: Any) -> tuple[str, set[str]]:
    meta = MetaData()
    meta.reflect(engine)
    parts = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(parts), set(meta.tables)


def test_no_secret_in_logs_responses_or_database(
    client: TestClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    json_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMC_COINSPOT_NONCE_DIR", str(tmp_path / "nonces"))
    caplog.set_level(logging.DEBUG)
    call = Recorder(client)
    alice, bob = login(client, "alice"), login(client, "bob")
    call("POST", "/api/v1/users", json={"username": "carol", "password": CAROL}, headers=alice)
    res = call("POST", "/api/v1/auth/login", json={"username": "carol", "password": CAROL})
    carol = {"Authorization": f"Bearer {res.json()['access_token']}"}
    call("POST", "/api/v1/auth/login", json={"username": "bob", "password": CAROL})  # wrong
    call("POST", "/api/v1/auth/session", json={"username": "alice", "password": PASSWORDS["alice"]})

    streamed: list[str] = []
    watcher = threading.Thread(target=lambda: streamed.append(stream_text(client, alice, 4.0)))
    watcher.start()
    with (
        coinspot_fake(key=CS_KEY, secret=CS_SECRET) as cs,
        fake_binance_trading() as bn,
        fake_openai() as ai,
    ):
        bodies = {
            "cs": {"kind": "coinspot", "name": "cs", "api_key": CS_KEY, "api_secret": CS_SECRET,
                   "base_url": cs.url},
            "bn": {"kind": "ccxt", "provider": "binance", "name": "bn", "api_key": BINANCE_KEY,
                   "api_secret": BINANCE_SECRET, "base_url": bn.url},
            "ai": {"kind": "llm", "provider": "openai", "name": "ai", "api_key": OPENAI_KEY,
                   "base_url": ai.base_url},
        }  # fmt: skip
        # refused keys (the real key with a wrong secret, and the other way round)
        call("POST", URL, json={**bodies["cs"], "api_secret": BINANCE_SECRET}, headers=alice)
        call("POST", URL, json={**bodies["bn"], "api_key": CS_KEY}, headers=alice)
        call("POST", URL, json={**bodies["ai"], "api_key": CS_SECRET}, headers=carol)
        # malformed bodies that carry the secrets
        call("POST", URL, json={**bodies["cs"], "password": CS_SECRET}, headers=alice)
        call("POST", URL, json={**bodies["cs"], "kind": CS_SECRET}, headers=alice)
        call("POST", URL, json={**bodies["cs"], "name": CS_SECRET + "!"}, headers=alice)
        call("POST", URL, json={**bodies["cs"], "api_key": CS_KEY * 400}, headers=alice)
        call("POST", URL, content=f'{{"api_key": "{CS_KEY}"', headers=alice)
        # saved, listed, checked, rotated, used
        ids = {}
        for name, owner in (("cs", alice), ("bn", alice), ("ai", carol)):
            saved = call("POST", URL, json=bodies[name], headers=owner)
            assert saved.status_code == 201, saved.text
            ids[name] = saved.json()["id"]
        call("POST", URL, json=bodies["cs"], headers=alice)  # the name is taken: 409
        call("GET", URL, headers=alice)
        call("GET", URL, headers=carol)
        call("POST", f"{URL}/{ids['cs']}/check", headers=alice)
        call("POST", f"{URL}/{ids['bn']}/rotate", json={"api_key": BINANCE_KEY,
             "api_secret": CS_SECRET}, headers=alice)  # fmt: skip
        call("POST", f"{URL}/{ids['bn']}/rotate", json={"api_key": BINANCE_KEY,
             "api_secret": BINANCE_SECRET}, headers=alice)  # fmt: skip
        for target in ids.values():  # another user's credentials
            call("POST", f"{URL}/{target}/check", headers=bob)
            call("DELETE", f"{URL}/{target}", headers=bob)
        st = client.app.state.omc  # type: ignore[attr-defined]
        carol_id = find(st.engine, "carol").id  # type: ignore[union-attr]
        assert llm_api_key_for(st.engine, carol_id, "openai", vault=st.vault) == OPENAI_KEY
        owner = find(st.engine, "alice")
        assert owner is not None
        info, material = use(st.engine, st.vault, owner, "bn", "scan test")
        venue = providers.live_venue(info.kind, material, st.settings)
        assert venue.balances()["USDT"].total > 0
        logging.getLogger("omc.test").info("venue %r, vault %r, material %r", venue, st.vault,
                                            material)  # fmt: skip
        cs.secret = "revoked-at-coinspot"
        assert call("POST", f"{URL}/{ids['cs']}/check", headers=alice).json()["ok"] is False
        call("DELETE", f"{URL}/{ids['cs']}", headers=alice)

    watcher.join(30)
    assert streamed, "the event stream did not end"
    statuses = {r.status_code for r in call.seen}
    assert {200, 201, 204, 401, 404, 409, 422} <= statuses and 500 not in statuses
    db_text, tables = database_text(st.engine)
    assert {"api_credentials", "api_audit", "api_users"} <= tables
    assert db_text.count("gAAAAA") >= 2  # the credentials are there, as Fernet tokens
    places = {"caplog": caplog.text, "json log": json_log.getvalue(),
              "responses": call.text(), "database": db_text, "stream": streamed[0]}  # fmt: skip
    assert json_log.getvalue().strip() and "credential" in caplog.text + db_text
    secrets = [CS_KEY, CS_SECRET, BINANCE_KEY, BINANCE_SECRET, OPENAI_KEY, SECRET, CAROL,
               *PASSWORDS.values()]  # fmt: skip
    found = [(s, where) for s in secrets for where, text in places.items() if s in text]
    assert not found, found
