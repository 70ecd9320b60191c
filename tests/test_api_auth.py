"""The API's users and auth: login, refresh, logout, the limiter, 401s, the cookie session
with CSRF, malformed input as 422 JSON — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omc.api.auth.ratelimit import LoginLimiter
from omc.api.auth.secret import SecretKeyError, load_secret
from tests.api_support import PASSWORDS, login


def test_login_ok_gives_a_bearer_pair(client: TestClient) -> None:
    res = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}
    )
    assert res.status_code == 200
    body = res.json()
    assert body["token_type"] == "bearer" and body["access_token"] and body["refresh_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"id": me.json()["id"], "username": "alice", "is_admin": True}


@pytest.mark.parametrize(
    "form",
    [
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": "wrong-password"},
    ],
)
def test_bad_login_is_one_401(client: TestClient, form: dict[str, str]) -> None:
    res = client.post("/api/v1/auth/login", json=form)
    assert res.status_code == 401
    assert res.json() == {
        "error": {"code": "invalid_credentials", "message": "wrong user name or password"}
    }


def test_failed_logins_are_rate_limited_per_user(client: TestClient) -> None:
    for _ in range(5):
        bad = client.post("/api/v1/auth/login", json={"username": "bob", "password": "nopenope"})
        assert bad.status_code == 401
    res = client.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORDS["bob"]})
    assert res.status_code == 429 and res.json()["error"]["code"] == "rate_limited"
    assert int(res.headers["Retry-After"]) >= 1
    assert login(client, "alice")  # another user is not locked out by bob's failures


def test_limiter_window_per_user_and_ip() -> None:
    now = [0.0]
    limiter = LoginLimiter(per_user=2, per_ip=3, window_s=60, clock=lambda: now[0])
    limiter.fail("a", "1.1.1.1")
    limiter.fail("a", "1.1.1.1")
    with pytest.raises(Exception, match="too many"):
        limiter.check("A", "2.2.2.2")  # names compare case-insensitively
    limiter.fail("b", "1.1.1.1")
    with pytest.raises(Exception, match="too many"):
        limiter.check("c", "1.1.1.1")  # the address is over its own limit
    now[0] = 61.0
    limiter.check("a", "1.1.1.1")  # the window slid past every failure


def test_no_token_or_a_bad_one_is_401(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
        for path in ("/api/v1/auth/me", "/api/v1/backtests", "/api/v1/backtests/x"):
            res = client.get(path, headers=headers)
            assert res.status_code == 401, (path, headers)
            assert res.json()["error"]["code"] == "not_authenticated"
        res = client.post("/api/v1/backtests", json={}, headers=headers)
        assert res.status_code == 401
    assert client.get("/api/v1/health").json()["status"] == "ok"


def test_refresh_and_logout_revokes_everything(client: TestClient) -> None:
    pair = client.post(
        "/api/v1/auth/login", json={"username": "bob", "password": PASSWORDS["bob"]}
    ).json()
    new = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert new.status_code == 200
    # an access token is not a refresh token
    wrong = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert wrong.status_code == 401
    headers = {"Authorization": f"Bearer {new.json()['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401


def test_cookie_session_needs_csrf_on_writes(client: TestClient) -> None:
    res = client.post(
        "/api/v1/auth/session", json={"username": "bob", "password": PASSWORDS["bob"]}
    )
    assert res.status_code == 200
    cookies = res.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("omc_access="))
    assert "HttpOnly" in access and "SameSite=strict" in access.replace("Strict", "strict")
    csrf = res.json()["csrf_token"]
    assert client.get("/api/v1/auth/me").json()["username"] == "bob"  # reads: cookie enough
    job = {"strategy": "sma_cross", "symbol": "X/Y", "exchange": "e"}
    denied = client.post("/api/v1/backtests", json=job)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "csrf_failed"
    forged = client.post("/api/v1/backtests", json=job, headers={"X-CSRF-Token": "f" * 64})
    assert forged.status_code == 403
    ok = client.post("/api/v1/backtests", json=job, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 202, ok.text
    # a bearer client needs no CSRF token
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/v1/auth/login", {"username": "alice"}, "password"),
        ("/api/v1/auth/login", {"username": 5, "password": "x"}, "username"),
        ("/api/v1/auth/login", [1, 2], "body"),
        ("/api/v1/auth/session", {"username": "", "password": "x"}, "username"),
        ("/api/v1/auth/refresh", {"refresh_token": ["x"]}, "refresh_token"),
    ],
)
def test_malformed_auth_input_is_422_naming_the_field(
    client: TestClient, path: str, payload: object, field: str
) -> None:
    res = client.post(path, json=payload)
    assert res.status_code == 422
    error = res.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith(field)


def test_not_json_is_422_and_unknown_route_404(client: TestClient) -> None:
    res = client.post(
        "/api/v1/auth/login", content=b"\xff{", headers={"content-type": "application/json"}
    )
    assert res.status_code == 422 and "error" in res.json()
    assert client.get("/api/v1/nothing").json()["error"]["code"] == "not_found"


def test_openapi_documents_the_contract_routes(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/auth/login",
        "/api/v1/backtests",
        "/api/v1/backtests/{job_id}",
        "/api/v1/ledgers/candles",
        "/api/v1/ledgers/prices/latest",
    ):
        assert path in paths


def test_key_file_is_created_0600_and_a_readable_one_refused(tmp_path: Path) -> None:
    key = load_secret(None, tmp_path)
    path = tmp_path / "secret.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(None, tmp_path) == key and len(key) >= 32
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        load_secret(None, tmp_path)
