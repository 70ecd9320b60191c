"""`omc users` and `omc serve` through the real CLI: create with --password-stdin, list,
disable; a server in a subprocess on a free port; the refusal to bind publicly without TLS;
and neither the password nor the secret ever in output, logs or responses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api_support import SECRET, free_port, run_omc

ROOT = Path(__file__).parents[1]
PASSWORD = "s3cret-Password-Xy!"


def test_users_create_list_disable(db_url: str, tmp_path: Path) -> None:
    env = {"OMC_DATABASE_URL": db_url, "OMC_DATA_DIR": str(tmp_path)}
    made = run_omc(
        ["users", "create", "carol", "--admin", "--password-stdin"], env, PASSWORD + "\n"
    )
    assert made.exit_code == 0, made.output
    assert "created admin carol" in made.output
    again = run_omc(["users", "create", "carol", "--password-stdin"], env, PASSWORD + "\n")
    assert again.exit_code == 2 and "exists already" in again.output
    short = run_omc(["users", "create", "dave", "--password-stdin"], env, "short\n")
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    empty = run_omc(["users", "create", "dave", "--password-stdin"], env, "")
    assert empty.exit_code == 2 and "no password" in empty.output
    listed = run_omc(["users", "list"], env)
    assert "carol" in listed.output and "admin" in listed.output and "active" in listed.output
    gone = run_omc(["users", "disable", "nobody"], env)
    assert gone.exit_code == 2 and "no user 'nobody'" in gone.output
    off = run_omc(["users", "disable", "carol"], env)
    assert off.exit_code == 0 and "disabled" in run_omc(["users", "list"], env).output
    for result in (made, again, short, listed, off):
        assert PASSWORD not in result.output


def test_serve_refuses_a_public_address_without_tls(tmp_path: Path) -> None:
    env = {"OMC_DATA_DIR": str(tmp_path)}
    res = run_omc(["serve", "--host", "0.0.0.0", "--port", "9"], env)
    assert res.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without TLS" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_serve_answers_on_a_free_port(db_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMC_DATABASE_URL": db_url,
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_SECRET_KEY": SECRET,
        "OMC_LOG_LEVEL": "INFO",
    }
    made = subprocess.run(
        [sys.executable, "-m", "omc", "users", "create", "erin", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omc", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "omc serve did not answer in 60 s"
            time.sleep(0.2)
        assert httpx.get(f"{base}/backtests").status_code == 401
        bad = httpx.post(f"{base}/auth/login", json={"username": "erin", "password": "nope-nope"})
        assert bad.status_code == 401
        res = httpx.post(f"{base}/auth/login", json={"username": "erin", "password": PASSWORD})
        assert res.status_code == 200
        token = res.json()["access_token"]
        me = httpx.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["username"] == "erin"
        responses = [bad.text, res.text, me.text]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    logged = log.read_text()
    assert "POST /api/v1/auth/login" in logged  # the access log is there ...
    for text in (logged, made.stdout, made.stderr, *responses):
        assert PASSWORD not in text and SECRET not in text  # ... without a secret


def test_secrets_never_reach_the_database_in_clear(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    from omc.core.db import make_engine

    env = {"OMC_DATABASE_URL": db_url, "OMC_DATA_DIR": str(tmp_path)}
    assert run_omc(["users", "create", "fay", "--password-stdin"], env, PASSWORD).exit_code == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        dump = [
            repr(tuple(row))
            for table in ("api_users", "api_audit")
            for row in conn.execute(text(f"select * from {table}"))
        ]
    engine.dispose()
    assert dump and not any(PASSWORD in row for row in dump)
    assert any("$argon2id$" in row for row in dump)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.1.2.3"])
def test_loopback_addresses(host: str) -> None:
    from omc.cli.serve import is_loopback

    assert is_loopback(host)
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
