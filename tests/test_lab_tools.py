"""The Lab's data tools: schemas an LLM can call, point-in-time results, bounded, never raising."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import Engine

from omc.core.db import make_engine
from omc.core.upsert import upsert
from omc.lab.tools import MAX_LIMIT, TOOLS, call_tool, tool_schemas
from omc.ledgers.models import Candle
from tests.test_pit import EARLY, LATE, SEC, T0, seed

# arguments that select the seeded rows, per tool
ARGS: dict[str, dict[str, Any]] = {
    "list_candle_series": {},
    "get_candles": {"exchange": "x", "symbol": "ETH/AUD", "timeframe": "1h"},
    "get_ticks": {"coin": "ETH"},
    "get_protocol_metrics": {"protocol": "lido", "metric": "tvl"},
    "get_onchain_metrics": {"chain": "ethereum"},
    "get_news": {"coin": "eth"},
    "get_social_posts": {"coin": "ETH", "platform": "reddit"},
    "get_hourly_sentiment": {"coin": "ETH"},
    "get_catalyst_events": {"coin": "PEPE"},
    "list_coins": {},
    "ledger_coverage": {},
}


def test_every_tool_has_an_llm_callable_json_schema() -> None:
    schemas = tool_schemas()
    assert len(schemas) >= 8 and set(ARGS) == set(TOOLS)
    names = [s["function"]["name"] for s in schemas]
    assert len(set(names)) == len(names) == len(TOOLS)
    for schema in schemas:
        assert schema["type"] == "function"
        function = schema["function"]
        assert function["name"].replace("_", "").isalnum() and len(function["description"]) > 40
        parameters = function["parameters"]
        Draft202012Validator.check_schema(parameters)
        assert parameters["type"] == "object" and parameters["additionalProperties"] is False
        assert "as_of" in parameters["properties"]
        for field, spec in parameters["properties"].items():
            assert spec.get("description"), (function["name"], field)
        json.dumps(schema)
        # the documented arguments satisfy both the JSON schema and the pydantic input
        example = ARGS[function["name"]] | {"as_of": "2024-03-01T12:00:00Z"}
        Draft202012Validator(parameters).validate(example)
        TOOLS[function["name"]].input.model_validate(example)


def test_every_tool_reads_point_in_time(engine: Engine) -> None:
    seed(engine)
    for name, args in ARGS.items():
        before = call_tool(name, args, engine=engine, as_of=EARLY - SEC)
        early = call_tool(name, args, engine=engine, as_of=EARLY)
        late = call_tool(name, args, engine=engine, as_of=LATE)
        assert before["ok"] and early["ok"] and late["ok"], (name, before, early, late)
        json.dumps(late, allow_nan=False)  # plain JSON
        if name == "ledger_coverage":
            rows = {r["table"]: r["rows"] for r in late["rows"]}
            assert rows["candles"] == 3
            assert {r["table"]: r["rows"] for r in early["rows"]}["candles"] == 1
            assert all(r["rows"] == 0 for r in before["rows"])
            continue
        assert before["total"] == 0, name
        assert 0 < early["total"] <= late["total"], name
        assert late["as_of"] == LATE.isoformat().replace("+00:00", "Z")
    candles = call_tool("get_candles", ARGS["get_candles"], engine=engine, as_of=LATE)
    assert candles["columns"][:2] == ["ts", "open"] and candles["rows"][0]["close"] == 1.5
    assert candles["rows"][0]["ts"] == "2024-03-01T12:00:00Z"
    assert candles["rows"][0]["collected_at"] == EARLY.isoformat().replace("+00:00", "Z")
    # the edited event reads as it did at as_of
    events = call_tool("get_catalyst_events", {}, engine=engine, as_of=EARLY)
    assert [r["title"] for r in events["rows"]] == ["PEPE listed"]
    assert events["rows"][0]["coins"] == ["PEPE"]


def test_an_llm_cannot_read_past_the_sessions_as_of(engine: Engine) -> None:
    seed(engine)
    args = ARGS["get_candles"]
    future = (LATE + timedelta(days=30)).isoformat()
    clamped = call_tool("get_candles", args | {"as_of": future}, engine=engine, as_of=EARLY)
    assert clamped["ok"] and clamped["total"] == 1
    assert clamped["as_of"] == EARLY.isoformat().replace("+00:00", "Z")
    assert any("clamped" in note for note in clamped["notes"])
    # an earlier as_of is honoured: what was known then
    earlier = call_tool(
        "get_candles", args | {"as_of": (EARLY - SEC).isoformat()}, engine=engine, as_of=LATE
    )
    assert earlier["ok"] and earlier["total"] == 0 and earlier["notes"] == []


def test_results_are_bounded_with_a_truncated_flag(engine: Engine) -> None:
    rows = [
        {
            "exchange": "x", "symbol": "BTC/AUD", "timeframe": "1h", "ts": T0 + timedelta(hours=i),
            "open": Decimal(i), "high": Decimal(i + 1), "low": Decimal(i), "close": Decimal(i),
            "volume": Decimal(1), "source": "t", "collected_at": T0 + timedelta(hours=i + 1),
        }
        for i in range(30)
    ]  # fmt: skip
    upsert(engine, Candle.__table__, rows)  # type: ignore[arg-type]
    args = {"exchange": "x", "symbol": "BTC/AUD", "timeframe": "1h"}
    moment = T0 + timedelta(days=2)
    full = call_tool("get_candles", args, engine=engine, as_of=moment)
    assert full["total"] == full["returned"] == 30 and full["truncated"] is False
    latest = call_tool("get_candles", args | {"limit": 5}, engine=engine, as_of=moment)
    assert latest["total"] == 30 and latest["returned"] == 5 and latest["truncated"] is True
    assert [r["close"] for r in latest["rows"]] == [25.0, 26.0, 27.0, 28.0, 29.0]
    assert any("30 rows match" in note for note in latest["notes"])
    first = call_tool(
        "get_candles", args | {"limit": 2, "keep": "earliest"}, engine=engine, as_of=moment
    )
    assert [r["close"] for r in first["rows"]] == [0.0, 1.0] and first["truncated"] is True
    window = call_tool(
        "get_candles",
        args | {"start": "2024-03-01T13:00:00Z", "end": "2024-03-01T14:00:00Z"},
        engine=engine,
        as_of=moment,
    )
    assert [r["close"] for r in window["rows"]] == [1.0, 2.0]
    # an item known only later than this moment stays hidden even inside the window
    at_two = call_tool("get_candles", args, engine=engine, as_of=T0 + timedelta(hours=2))
    assert at_two["total"] == 2


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("get_prices", {}, "unknown tool 'get_prices'"),
        ("get_candles", {"exchange": "x", "symbol": "BTC/AUD"}, "timeframe: Field required"),
        ("get_candles", ARGS["get_candles"] | {"timeframe": "7x"}, "timeframe"),
        ("get_candles", ARGS["get_candles"] | {"limit": MAX_LIMIT + 1}, "limit"),
        ("get_candles", ARGS["get_candles"] | {"limit": "many"}, "limit"),
        ("get_news", {"coin": "ETH", "when": "now"}, "when: Extra inputs are not permitted"),
        ("get_news", {"start": "2024-03-01T12:00:00"}, "start: a time needs a time zone"),
        (
            "get_news",
            {"start": "2024-03-02T00:00:00Z", "end": "2024-03-01T00:00:00Z"},
            "start must not be after end",
        ),
        ("get_news", {"coin": "ETH; drop table"}, "coin"),
        ("get_news", "{not json", "arguments are not valid JSON"),
        ("get_news", "[1, 2]", "arguments must be a JSON object"),
        ("get_news", {"keep": "middle"}, "keep"),
    ],
)
def test_bad_calls_give_one_clear_error(
    engine: Engine, name: str, args: Any, expected: str
) -> None:
    result = call_tool(name, args, engine=engine, as_of=LATE)
    assert result["ok"] is False and result["tool"] == name
    assert expected in result["error"] and "\n" not in result["error"]
    json.dumps(result)


def test_json_text_arguments_and_database_errors(tmp_path: Path) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # no tables
    result = call_tool("get_news", '{"coin": "ETH"}', engine=empty, as_of=LATE)
    assert result["ok"] is False and result["error"].startswith("database error:")
    assert "\n" not in result["error"]
