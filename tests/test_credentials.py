"""Credentials, bring your own keys: saved through the API only after the provider (a local
fake) accepts them, stored encrypted, listed masked, checked, rotated, deleted, owner-only,
every action audited; `omc init` writes the key file once; `omc trade live --credential`
trades with the stored key; the Lab's `llm_api_key_for` reads the owner's LLM key."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from omc.api.auth.users import find
from omc.api.models import AUDIT, CREDENTIALS
from omc.api.vault import Vault, llm_api_key_for
from tests.api_support import SECRET, login, run_omc
from tests.fakes.ccxt_exchange_server import API_KEY as BINANCE_KEY
from tests.fakes.ccxt_exchange_server import API_SECRET as BINANCE_SECRET
from tests.fakes.ccxt_exchange_server import FakeBinanceTrading, fake_binance_trading
from tests.fakes.coinspot_private_server import FakeCoinSpotPrivate, running_private_coinspot
from tests.fakes.openai_server import API_KEY as OPENAI_KEY
from tests.fakes.openai_server import FakeOpenAI, fake_openai

CS_KEY = "cs-key-7f3a9b2c4d5e6f70"
CS_SECRET = "cs-secret-9Xq2Lm4Np6Rs8Tv0"
URL = "/api/v1/credentials"


@pytest.fixture(autouse=True)
def nonce_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMC_COINSPOT_NONCE_DIR", str(tmp_path / "nonces"))


@pytest.fixture
def coinspot() -> Iterator[FakeCoinSpotPrivate]:
    yield from running_private_coinspot(key=CS_KEY, secret=CS_SECRET)


@pytest.fixture
def binance() -> Iterator[FakeBinanceTrading]:
    with fake_binance_trading() as server:
        yield server


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


def coinspot_body(fake: FakeCoinSpotPrivate, **over: Any) -> dict[str, Any]:
    return {"kind": "coinspot", "name": "main", "api_key": CS_KEY, "api_secret": CS_SECRET,
            "base_url": fake.url, **over}  # fmt: skip


def test_save_list_check_rotate_delete(client: TestClient, coinspot: FakeCoinSpotPrivate) -> None:
    alice = login(client, "alice")
    wrong = client.post(URL, json=coinspot_body(coinspot, api_secret="wrong-secret-123"),
                        headers=alice)  # fmt: skip
    assert wrong.status_code == 422, wrong.text
    error = wrong.json()["error"]
    assert error["code"] == "credential_refused"
    assert (
        "coinspot refused the key" in error["message"] and "nothing was stored" in error["message"]
    )
    assert client.get(URL, headers=alice).json()["items"] == []

    saved = client.post(URL, json=coinspot_body(coinspot), headers=alice)
    assert saved.status_code == 201, saved.text
    cred = saved.json()
    assert cred["kind"] == "coinspot" and cred["name"] == "main" and cred["hint"] == "****6f70"
    assert cred["endpoint"] == coinspot.url and cred["checked_at"] and cred["last_used_at"] is None
    assert any("/ro/my/balances" in r.path for r in coinspot.requests)
    again = client.post(URL, json=coinspot_body(coinspot), headers=alice)
    assert again.status_code == 409
    (listed,) = client.get(URL, headers=alice).json()["items"]
    assert listed == cred

    checked = client.post(f"{URL}/{cred['id']}/check", headers=alice)
    assert checked.status_code == 200 and checked.json()["ok"] is True
    bad_rotation = client.post(f"{URL}/{cred['id']}/rotate",
                               json={"api_key": CS_KEY, "api_secret": "nope-nope-nope"},
                               headers=alice)  # fmt: skip
    assert bad_rotation.status_code == 422
    assert "the stored key is unchanged" in bad_rotation.json()["error"]["message"]
    fresh = {"api_key": CS_KEY, "api_secret": CS_SECRET}
    rotated = client.post(f"{URL}/{cred['id']}/rotate", json=fresh, headers=alice)
    assert rotated.status_code == 200 and rotated.json()["rotated_at"]
    assert rotated.json()["endpoint"] == coinspot.url  # the stored base_url was kept
    coinspot.secret = "changed-at-the-exchange"  # the user revoked the key at CoinSpot
    stale = client.post(f"{URL}/{cred['id']}/check", headers=alice).json()
    assert stale["ok"] is False and "refused" in stale["message"]

    assert client.delete(f"{URL}/{cred['id']}", headers=alice).status_code == 204
    assert client.delete(f"{URL}/{cred['id']}", headers=alice).status_code == 404
    assert client.get(URL, headers=alice).json()["items"] == []

    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(AUDIT).order_by(AUDIT.c.id))]
    for action in ("credential_refused", "credential_saved", "credential_checked",
                   "credential_rotated", "credential_deleted"):  # fmt: skip
        assert action in actions


def test_another_users_credential_is_not_found(
    client: TestClient, coinspot: FakeCoinSpotPrivate
) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    cred = client.post(URL, json=coinspot_body(coinspot), headers=alice).json()
    assert client.get(URL, headers=bob).json()["items"] == []
    for method, path in (("post", "check"), ("post", "rotate"), ("delete", "")):
        url = f"{URL}/{cred['id']}" + (f"/{path}" if path else "")
        kwargs: dict[str, Any] = {"json": {"api_key": "x"}} if path == "rotate" else {}
        res = client.request(method.upper(), url, headers=bob, **kwargs)
        assert res.status_code == 404, (url, res.text)
        assert client.request(method.upper(), url, **kwargs).status_code == 401
    # bob may use the same name: names are per user
    assert client.post(URL, json=coinspot_body(coinspot), headers=bob).status_code == 201


def test_malformed_input_is_422(client: TestClient) -> None:
    alice = login(client, "alice")
    cases = [
        {"kind": "coinspot", "name": "x"},  # no api_key
        {"kind": "bank", "name": "x", "api_key": "k", "api_secret": "s"},
        {"kind": "ccxt", "name": "x", "api_key": "k", "api_secret": "s"},  # no exchange
        {"kind": "coinspot", "name": "bad name!", "api_key": "k", "api_secret": "s"},
        {"kind": "coinspot", "name": "x", "api_key": "k"},  # no secret
        {"kind": "llm", "provider": "mine", "name": "x", "api_key": "k"},  # no base_url
        {"kind": "llm:openai", "name": "x", "api_key": "k", "base_url": "ftp://host/v1"},
        {"kind": "ccxt", "provider": "no-such-exchange", "name": "x", "api_key": "k",
         "api_secret": "s"},
    ]  # fmt: skip
    for body in cases:
        res = client.post(URL, json=body, headers=alice)
        assert res.status_code == 422, (body, res.text)
        assert res.json()["error"]["code"] == "invalid_input"
    assert client.post(f"{URL}/99999999999/check", headers=alice).status_code == 422
    assert client.get(URL, params={"cursor": "nonsense"}, headers=alice).status_code == 422


def test_ccxt_and_llm_keys_are_checked_and_the_lab_reads_its_key(
    client: TestClient, binance: FakeBinanceTrading, openai: FakeOpenAI
) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    ccxt = {"kind": "ccxt", "provider": "binance", "name": "bn", "api_key": BINANCE_KEY,
            "api_secret": BINANCE_SECRET, "base_url": binance.url}  # fmt: skip
    refused = client.post(URL, json={**ccxt, "api_secret": "not-the-secret"}, headers=alice)
    assert refused.status_code == 422 and "ccxt:binance refused the key" in refused.text
    saved = client.post(URL, json=ccxt, headers=alice)
    assert saved.status_code == 201 and saved.json()["kind"] == "ccxt:binance"
    assert "GET /api/v3/account" in binance.requests  # fetch_balance, signed

    llm = {"kind": "llm", "provider": "openai", "name": "gpt", "api_key": OPENAI_KEY,
           "base_url": openai.base_url}  # fmt: skip
    nope = client.post(URL, json={**llm, "api_key": "sk-wrong-key-000000000000"}, headers=alice)
    assert nope.status_code == 422 and "llm:openai refused the key (HTTP 401)" in nope.text
    made = client.post(URL, json=llm, headers=alice)
    assert made.status_code == 201 and made.json()["hint"] == "****WXYZ"
    assert [(s.path, s.authorised) for s in openai.requests][-1] == ("/v1/models", True)

    st = client.app.state.omc  # type: ignore[attr-defined]
    ids = {n: find(st.engine, n).id for n in ("alice", "bob")}  # type: ignore[union-attr]
    assert llm_api_key_for(st.engine, ids["alice"], "openai", vault=st.vault) == OPENAI_KEY
    assert llm_api_key_for(st.engine, ids["bob"], "openai", vault=st.vault) is None
    assert llm_api_key_for(st.engine, ids["alice"], "anthropic", vault=st.vault) is None
    assert client.get(URL, headers=bob).json()["items"] == []
    (gpt,) = [c for c in client.get(URL, headers=alice).json()["items"] if c["name"] == "gpt"]
    assert gpt["last_used_at"] is not None
    with st.engine.connect() as conn:
        used = [r.detail for r in conn.execute(select(AUDIT).where(
            AUDIT.c.action == "credential_used"))]  # fmt: skip
        blobs = [r.ciphertext for r in conn.execute(select(CREDENTIALS))]
    assert used == [{"credential": gpt["id"], "name": "gpt", "kind": "llm:openai",
                     "purpose": "lab"}]  # fmt: skip
    assert all(OPENAI_KEY not in b and BINANCE_SECRET not in b for b in blobs)
    other = Vault(b"another-installation-secret-0123456789")
    with pytest.raises(ValueError, match="cannot be decrypted"):
        other.open(blobs[0], "bn")


def test_omc_init_writes_the_key_file_once(tmp_path: Path) -> None:
    env = {"OMC_DATA_DIR": str(tmp_path / "data")}
    first = run_omc(["init"], env)
    path = tmp_path / "data" / "secret.key"
    assert first.exit_code == 0, first.output
    assert "created the secret key file" in first.output and str(path) in first.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()
    assert key.strip() not in first.output
    second = run_omc(["init"], env)
    assert second.exit_code == 0 and "exists already: kept" in second.output
    assert path.read_text() == key
    path.chmod(0o644)
    loose = run_omc(["init"], env)
    assert loose.exit_code == 2 and "can be read by others" in loose.output
    assert path.read_text() == key and key.strip() not in loose.output
    fresh = tmp_path / "env"
    by_env = run_omc(["init"], {"OMC_DATA_DIR": str(fresh), "OMC_SECRET_KEY": SECRET})
    assert by_env.exit_code == 0 and "OMC_SECRET_KEY is set" in by_env.output
    assert not (fresh / "secret.key").exists() and SECRET not in by_env.output
    short = run_omc(["init"], {"OMC_DATA_DIR": str(fresh), "OMC_SECRET_KEY": "short"})
    assert short.exit_code == 2 and "at least 32 characters" in short.output


def test_trade_live_with_the_owners_stored_ccxt_key(
    client: TestClient, db_url: str, tmp_path: Path, binance: FakeBinanceTrading
) -> None:
    alice = login(client, "alice")
    body = {"kind": "ccxt:binance", "name": "bn", "api_key": BINANCE_KEY,
            "api_secret": BINANCE_SECRET, "base_url": binance.url}  # fmt: skip
    assert client.post(URL, json=body, headers=alice).status_code == 201
    env = {
        "OMC_DATABASE_URL": db_url,
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_SECRET_KEY": SECRET,  # the API's secret (tests/api_support.py)
        "OMC_LIVE_TRADING": "true",
        "OMC_GUARD_MAX_ORDER_NOTIONAL": "2000",
        "OMC_GUARD_MAX_POSITION_NOTIONAL": "5000",
        "OMC_GUARD_MAX_DAILY_LOSS": "500",
        "OMC_CCXT_API_KEY": "",
        "OMC_CCXT_API_SECRET": "",
    }
    args = ["trade", "live", "--venue", "ccxt:binance", "--strategy", "sma_cross",
            "--param", "fast=1", "--param", "slow=2", "--symbol", "BTC/USDT", "--poll", "0.05",
            "--max-bars", "1", "--live"]  # fmt: skip
    wrong = run_omc([*args, "--credential", "bn", "--user", "bob"], env)
    assert wrong.exit_code == 2 and "no credential 'bn'" in wrong.output
    kind = run_omc(["trade", "live", "--venue", "coinspot", *args[4:], "--credential", "bn",
                    "--user", "alice"], env)  # fmt: skip
    assert kind.exit_code == 2 and "is a ccxt:binance key" in kind.output
    before = len(binance.requests)
    traded = run_omc([*args, "--credential", "bn", "--user", "alice"], env)
    assert traded.exit_code == 0, traded.output
    assert "ccxt:binance-sma_cross" in traded.output
    signed = [r for r in binance.requests[before:] if r.startswith("GET /api/v3/account")]
    assert signed and binance.bad_signatures == 0
    assert BINANCE_SECRET not in traded.output and BINANCE_KEY not in traded.output
    (cred,) = client.get(URL, headers=alice).json()["items"]
    assert cred["last_used_at"] is not None
    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        used = conn.execute(select(AUDIT.c.detail).where(AUDIT.c.action == "credential_used"))
        assert [d["purpose"] for (d,) in used] == ["trade live ccxt:binance-sma_cross"]


def test_the_labs_llm_plans_with_the_owners_stored_key(
    client: TestClient, openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omc.api.models import LAB_OWNERS
    from omc.core.time import utcnow
    from omc.lab.agents.providers import open_chat
    from omc.lab.graph.planning import llm_settings

    monkeypatch.setenv("OMC_LLM_PROVIDER", "openai")
    monkeypatch.setenv("OMC_LLM_MODEL", "gpt-fake-mini")
    monkeypatch.delenv("OMC_LLM_API_KEY", raising=False)
    alice = login(client, "alice")
    body = {"kind": "llm", "provider": "openai", "name": "gpt", "api_key": OPENAI_KEY,
            "base_url": openai.base_url}  # fmt: skip
    assert client.post(URL, json=body, headers=alice).status_code == 201
    st = client.app.state.omc  # type: ignore[attr-defined]
    owners = {n: find(st.engine, n).id for n in ("alice", "bob")}  # type: ignore[union-attr]
    with st.engine.begin() as conn:
        for name, uid in owners.items():
            conn.execute(LAB_OWNERS.insert().values(session_id=f"s-{name}", owner_id=uid,
                                                    created_at=utcnow()))  # fmt: skip
    mine = llm_settings(st.lab.runtime("s-alice").settings)
    assert mine.api_key is not None and mine.api_key.get_secret_value() == OPENAI_KEY
    assert mine.base_url == openai.base_url and mine.model == "gpt-fake-mini"
    assert st.lab.runtime("s-alice").settings.data_dir == st.settings.data_dir
    assert llm_settings(st.lab.runtime("s-bob").settings).api_key is None  # bob has no key
    assert llm_settings(st.lab.runtime().settings).api_key is None
    with open_chat(mine) as chat:
        assert chat.model.invoke("hello").content == "ok"
    assert [(r.path, r.authorised) for r in openai.requests][-1] == ("/v1/chat/completions", True)
