"""Lab studies over the API (the Lab's graph), on SQLite and PostgreSQL: a goal planned
against the stored candles runs in the server to the approval gate; its event log, report and
trials are read back; it is approved (another user sees none of it: 404); a goal the planner
must ask about is answered and runs on; a study at the gate is revised and re-run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api_support import login, run_omc
from tests.test_lab_cli import GOAL, write_candles


def import_hourly(db_url: str, tmp_path: Path) -> None:
    data = write_candles(tmp_path / "btc-1h.csv", signal=0.6, seed=7)
    env = {"OMC_DATABASE_URL": db_url, "OMC_DATA_DIR": str(tmp_path)}
    res = run_omc(
        [
            "data",
            "import",
            str(data),
            "--exchange",
            "demo",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
        ],
        env,
    )
    assert res.exit_code == 0, res.output


def wait_study(client: TestClient, sid: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        body: dict[str, Any] = client.get(f"/api/v1/lab/sessions/{sid}", headers=headers).json()
        if body["status"] not in ("planned", "running"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_a_study_runs_in_the_server_and_is_approved(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    import_hourly(db_url, tmp_path)
    alice, bob = login(client, "alice"), login(client, "bob")
    res = client.post("/api/v1/lab/sessions", json={"goal": GOAL, "trials": 2}, headers=alice)
    assert res.status_code == 202, res.text
    sid = res.json()["id"]
    assert res.json() == {"id": sid, "status": "planned"}
    for path in ("", "/events", "/report", "/report.json"):
        assert client.get(f"/api/v1/lab/sessions/{sid}{path}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/lab/sessions/{sid}/approve", headers=bob).status_code == 404
    done = wait_study(client, sid, alice)
    assert done["status"] == "pending_approval", done["error"]
    assert done["verdict"] in ("edge", "no_edge") and done["n_trials"] == 2
    events = client.get(f"/api/v1/lab/sessions/{sid}/events", headers=alice).json()
    kinds = [e["kind"] for e in events["items"]]
    assert kinds[0] == "session" and len(kinds) > 3
    later = client.get(
        f"/api/v1/lab/sessions/{sid}/events?cursor={events['next_cursor']}", headers=alice
    ).json()
    assert later["items"] == []
    report = client.get(done["report"], headers=alice)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<html" in report.text.lower()
    data = client.get(f"/api/v1/lab/sessions/{sid}/report.json", headers=alice).json()
    assert len(data["trials"]) == 2 and data["id"] == sid
    refused = client.post(f"/api/v1/lab/sessions/{sid}/reject", json={}, headers=alice)
    assert refused.status_code == 409  # a rejection needs a reason
    body = {"reason": "looks real", "force": done["verdict"] != "edge"}
    approved = client.post(f"/api/v1/lab/sessions/{sid}/approve", json=body, headers=alice)
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval"] == "approved" and approved.json()["status"] == "done"
    assert [s["id"] for s in client.get("/api/v1/lab/sessions", headers=alice).json()["items"]] == [
        sid
    ]
    assert client.get("/api/v1/lab/sessions", headers=bob).json()["items"] == []


def test_a_question_is_answered_and_a_study_revised(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    import_hourly(db_url, tmp_path)
    alice = login(client, "alice")
    goal = {"goal": "predict the direction of the next bar", "trials": 1}
    res = client.post("/api/v1/lab/sessions", json=goal, headers=alice)
    assert res.status_code == 202, res.text
    sid = res.json()["id"]
    asked = wait_study(client, sid, alice)
    assert asked["status"] == "asked" and asked["question"], asked
    early = client.post(
        f"/api/v1/lab/sessions/{sid}/revise", json={"instructions": "x"}, headers=alice
    )
    assert early.status_code == 409  # not at the approval gate
    answered = client.post(
        f"/api/v1/lab/sessions/{sid}/answer", json={"answer": "BTC"}, headers=alice
    )
    assert answered.status_code == 202, answered.text
    gate = wait_study(client, sid, alice)
    assert gate["status"] == "pending_approval", gate
    again = client.post(f"/api/v1/lab/sessions/{sid}/answer", json={"answer": "x"}, headers=alice)
    assert again.status_code == 409
    revised = client.post(
        f"/api/v1/lab/sessions/{sid}/revise", json={"instructions": '{"trials": 2}'}, headers=alice
    )
    assert revised.status_code == 202, revised.text
    back = wait_study(client, sid, alice)
    assert back["status"] == "pending_approval" and back["n_trials"] > gate["n_trials"], back
    kinds = [
        e["kind"]
        for e in client.get(f"/api/v1/lab/sessions/{sid}/events", headers=alice).json()["items"]
    ]
    assert "answer" in kinds or any("answer" in k for k in kinds), kinds
