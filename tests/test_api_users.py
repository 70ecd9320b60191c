"""`/api/v1/users` for admins: list, create, disable (403 for anyone else, 401 without a
token, the password never answered); and `omc serve`'s TLS settings checked before binding."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from omc.api.models import AUDIT
from tests.api_support import login, run_omc

URL = "/api/v1/users"
CAROL = "carol-Pass-word-42!"


def test_admins_list_create_and_disable_users(client: TestClient) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=bob).status_code == 403
    assert (
        client.post(URL, json={"username": "x", "password": CAROL}, headers=bob).status_code == 403
    )
    names = [u["username"] for u in client.get(URL, headers=alice).json()["items"]]
    assert names == ["alice", "bob"]
    page = client.get(URL, params={"limit": 1}, headers=alice).json()
    assert [u["username"] for u in page["items"]] == ["alice"] and page["next_cursor"]
    rest = client.get(URL, params={"cursor": page["next_cursor"]}, headers=alice).json()
    assert [u["username"] for u in rest["items"]] == ["bob"] and rest["next_cursor"] is None

    made = client.post(URL, json={"username": "carol", "password": CAROL}, headers=alice)
    assert made.status_code == 201 and made.json()["is_admin"] is False
    assert CAROL not in made.text and "password" not in made.json()
    taken = client.post(URL, json={"username": "carol", "password": CAROL}, headers=alice)
    assert taken.status_code == 409
    weak = client.post(URL, json={"username": "dave", "password": "short"}, headers=alice)
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "invalid_input"
    assert client.post(URL, json={"username": "dave"}, headers=alice).status_code == 422

    res = client.post("/api/v1/auth/login", json={"username": "carol", "password": CAROL})
    carol = {"Authorization": f"Bearer {res.json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=carol).status_code == 200
    off = client.post(f"{URL}/carol/disable", headers=alice)
    assert off.status_code == 200 and off.json()["disabled"] is True
    assert client.get("/api/v1/auth/me", headers=carol).status_code == 401
    assert client.post(f"{URL}/nobody/disable", headers=alice).status_code == 404
    assert client.post(f"{URL}/alice/disable", headers=alice).status_code == 409
    assert client.post(f"{URL}/alice/disable", headers=bob).status_code == 403

    engine = client.app.state.omc.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT.c.action, AUDIT.c.actor)).all()
    assert ("user_created", "alice") in rows and ("user_disabled", "alice") in rows


def test_serve_needs_both_tls_files(tmp_path: Path) -> None:
    half = run_omc(["serve", "--host", "0.0.0.0"], {"OMC_DATA_DIR": str(tmp_path),
                   "OMC_TLS_CERTFILE": str(tmp_path / "cert.pem")})  # fmt: skip
    assert half.exit_code == 2 and "TLS needs both" in half.output
    env = {"OMC_DATA_DIR": str(tmp_path), "OMC_TLS_CERTFILE": str(tmp_path / "cert.pem"),
           "OMC_TLS_KEYFILE": str(tmp_path / "key.pem")}  # fmt: skip
    missing = run_omc(["serve", "--host", "0.0.0.0"], env)  # TLS configured: may bind publicly
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert "refusing" not in missing.output
