"""Shared helpers of the API tests: an app on the test database, users, logins, the CLI."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from omc.api.app import create_app
from omc.api.auth.users import create_user
from omc.api.settings import ApiSettings
from omc.core.config import Settings

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
PASSWORDS = {"alice": "alice-pass-Zq81!x", "bob": "bob-pass-Wm42?y"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_settings(**overrides: Any) -> ApiSettings:
    return ApiSettings(secret_key=SecretStr(SECRET), api_workers=1, **overrides)


def serve_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The `client` fixture (tests/conftest.py): the app on the test database, alice (admin)
    and bob created."""
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    app = create_app(settings, api_settings())
    engine = app.state.omc.engine
    for name, password in PASSWORDS.items():
        create_user(engine, name, password, admin=name == "alice")
    with TestClient(app) as test_client:
        yield test_client
    app.state.omc.jobs.shutdown(wait=True)
    app.state.omc.paper.shutdown(wait=True)
    app.state.omc.lab.shutdown(wait=True)
    engine.dispose()


def login(client: TestClient, name: str) -> dict[str, str]:
    res = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name]})
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def run_omc(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    """`omc ARGS` in process, with `env` set and the cached settings and engine reset."""
    from omc.cli import context
    from omc.cli.app import app
    from omc.core.config import get_settings

    get_settings.cache_clear()
    context.engine.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            patch.setattr(context.console, "width", 200)
            result = CliRunner().invoke(app, args, input=stdin)
            if context.engine.cache_info().currsize:
                context.engine().dispose()
    finally:
        get_settings.cache_clear()
        context.engine.cache_clear()
    return result
