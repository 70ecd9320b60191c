"""/health (alive), /ready (database, broker, schema at head; 503 with reasons), /metrics and
GET /api/v1/ops/dead-letters on the API app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from omc.api.app import create_app
from omc.api.auth.users import create_user
from omc.core.config import Settings
from omc.migrations import current_revision, head_revision
from omc.ops.queue import journal
from tests.api_support import PASSWORDS, api_settings, login


def at_head(engine: Engine) -> tuple[str | None, str | None]:
    return current_revision(engine), head_revision()


def behind(engine: Engine) -> tuple[str | None, str | None]:
    return "0001", head_revision()


def serve(db_url: str, tmp_path: Path, schema: object) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path, database_url=db_url), api_settings(), None, schema)  # type: ignore[arg-type]
    for name, password in PASSWORDS.items():
        create_user(app.state.omc.engine, name, password, admin=name == "alice")
    with TestClient(app) as client:
        yield client
    app.state.omc.jobs.shutdown(wait=True)
    app.state.omc.engine.dispose()


@pytest.fixture
def ready_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    yield from serve(db_url, tmp_path, at_head)


def test_health_and_ready(ready_client: TestClient) -> None:
    assert ready_client.get("/health").json() == {"status": "ok"}
    res = ready_client.get("/ready")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
    assert body["checks"]["broker"].startswith("skipped") and body["reasons"] == []


def test_ready_is_503_with_reasons(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMC_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    for client in serve(db_url, tmp_path, behind):
        res = client.get("/ready")
        assert res.status_code == 503
        reasons = " | ".join(res.json()["reasons"])
        assert "migrations: schema at 0001" in reasons and "omc db upgrade" in reasons
        assert "broker: unreachable" in reasons
        assert client.get("/health").status_code == 200  # alive all the same


def test_metrics_are_mounted(ready_client: TestClient) -> None:
    res = ready_client.get("/metrics/")
    assert res.status_code == 200
    assert "omc_" in res.text


def test_dead_letters_route(ready_client: TestClient) -> None:
    engine = ready_client.app.state.omc.engine  # type: ignore[attr-defined]
    job = journal.claim(engine, "collect", {"source": "coinspot"}, slot_key="collect:x@1")
    assert job is not None
    journal.fail(engine, job, "HttpError: 502 from https://x/?key=abc", dead=True)
    res = ready_client.get("/api/v1/ops/dead-letters", headers=login(ready_client, "alice"))
    assert res.status_code == 200, res.text
    [letter] = res.json()
    assert letter["id"] == job and letter["kind"] == "collect" and "502" in letter["error"]
    bob = ready_client.get("/api/v1/ops/dead-letters", headers=login(ready_client, "bob"))
    assert bob.status_code == 403


def test_queue_metrics(ready_client: TestClient) -> None:
    engine = ready_client.app.state.omc.engine  # type: ignore[attr-defined]
    job = journal.claim(engine, "backtest", {"job_id": "x"})
    assert job is not None
    journal.begin(engine, job, "backtest", {}, "w", 3)
    journal.finish(engine, job)
    dead = journal.claim(engine, "notify", {})
    assert dead is not None
    journal.fail(engine, dead, "boom", dead=True)
    text = ready_client.get("/metrics/").text
    assert 'omc_queue_jobs{kind="backtest",status="done"} 1.0' in text
    assert "omc_queue_dead_letters 1.0" in text
    assert 'omc_job_duration_seconds_max{kind="backtest"}' in text
