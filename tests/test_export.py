"""Ledger export: CSV and JSON formats, decimals as strings, ISO UTC timestamps, filters."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from omc.core.upsert import upsert
from omc.ledgers.export import EXPORTS, ExportError, export
from omc.ledgers.models import Candle, Tick

COLLECTED = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def filled(engine: Engine) -> Engine:
    candle = {"exchange": "binance", "timeframe": "5m", "source": "backfill"}
    upsert(
        engine,
        Candle.__table__,
        [
            {**candle, "symbol": "BTC/USDT", "ts": utc("2024-01-01T00:00"),
             "open": Decimal("42283.58"), "high": Decimal("42300.00000000"),
             "low": Decimal("42261.02"), "close": Decimal("42298.61"),
             "volume": Decimal("1E-8"), "collected_at": COLLECTED},
            {**candle, "symbol": "BTC/USDT", "ts": utc("2024-01-01T00:05"),
             "open": Decimal("42298.62"), "high": Decimal("42320"), "low": Decimal("42290"),
             "close": Decimal("42315.5"), "volume": None, "collected_at": COLLECTED},
            {**candle, "symbol": "ADA/BTC", "ts": utc("2024-01-01T00:00"),
             "open": Decimal("5.33e-05"), "high": Decimal("0.0000534"),
             "low": Decimal("0.0000528"), "close": Decimal("0.0000529"),
             "volume": Decimal("431401.9787"), "collected_at": COLLECTED},
        ],
    )  # fmt: skip
    tick = {"source": "coinspot", "volume": None, "collected_at": COLLECTED}
    upsert(
        engine,
        Tick.__table__,
        [
            {**tick, "coin": "btc", "market": "aud", "ts": utc("2024-01-01T00:00:05"),
             "bid": Decimal("63000.1"), "ask": Decimal("63010"), "last": Decimal("63005.25")},
            {**tick, "coin": "btc", "market": "usdt", "ts": utc("2024-01-01T00:00:05"),
             "bid": Decimal("42000"), "ask": Decimal("42001"), "last": Decimal("42000.5")},
            {**tick, "coin": "eth", "market": "aud", "ts": utc("2024-01-02T00:00:00"),
             "bid": Decimal("3500"), "ask": Decimal("3501"), "last": Decimal("3500.5")},
        ],
    )  # fmt: skip
    return engine


def run(engine: Engine, kind: str, fmt: str, **filters: object) -> str:
    out = io.StringIO()
    export(engine, kind, out, fmt, **filters)  # type: ignore[arg-type]
    return out.getvalue()


def test_csv_candles(filled: Engine) -> None:
    rows = list(csv.DictReader(io.StringIO(run(filled, "candles", "csv"))))
    assert [r["symbol"] for r in rows] == ["ADA/BTC", "BTC/USDT", "BTC/USDT"]  # key order
    assert list(rows[0]) == [c.name for c in Candle.__table__.columns]
    ada, btc, btc2 = rows
    assert (ada["open"], ada["high"], ada["volume"]) == ("0.0000533", "0.0000534", "431401.9787")
    assert (btc["high"], btc["volume"], btc2["volume"]) == ("42300", "0.00000001", "")
    assert btc["ts"] == "2024-01-01T00:00:00Z"
    assert btc["collected_at"] == "2024-05-01T12:00:00.123456Z"


def test_json_candles(filled: Engine) -> None:
    rows = json.loads(run(filled, "candles", "json", symbol="btc/usdt"))
    assert isinstance(rows, list) and len(rows) == 2
    first = rows[0]
    assert first == {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "5m",
        "ts": "2024-01-01T00:00:00Z",
        "open": "42283.58",
        "high": "42300",
        "low": "42261.02",
        "close": "42298.61",
        "volume": "0.00000001",
        "source": "backfill",
        "collected_at": "2024-05-01T12:00:00.123456Z",
    }
    assert rows[1]["volume"] is None


def test_filters(filled: Engine) -> None:
    since = utc("2024-01-01T00:05")
    rows = json.loads(run(filled, "candles", "json", since=since))
    assert [(r["symbol"], r["ts"]) for r in rows] == [("BTC/USDT", "2024-01-01T00:05:00Z")]
    ticks = json.loads(run(filled, "ticks", "json", symbol="BTC"))
    assert [(t["coin"], t["market"]) for t in ticks] == [("btc", "aud"), ("btc", "usdt")]
    assert ticks[0]["last"] == "63005.25" and ticks[0]["ts"] == "2024-01-01T00:00:05Z"
    ticks = json.loads(run(filled, "ticks", "json", symbol="btc/AUD"))
    assert [(t["coin"], t["market"]) for t in ticks] == [("btc", "aud")]
    ticks = json.loads(run(filled, "ticks", "json", since=utc("2024-01-01T12:00")))
    assert [t["coin"] for t in ticks] == ["eth"]
    assert run(filled, "candles", "json", symbol="NONE/X") == "[]\n"
    assert run(filled, "candles", "csv", symbol="NONE/X").splitlines() == [
        ",".join(c.name for c in Candle.__table__.columns)
    ]


def test_errors_and_registry(engine: Engine) -> None:
    assert set(EXPORTS) >= {"ticks", "candles"}
    with pytest.raises(ExportError, match="unknown kind"):
        run(engine, "nope", "csv")
    with pytest.raises(ExportError, match="unknown format"):
        run(engine, "candles", "xml")


def test_cli_export(filled: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omc.cli import data
    from omc.cli.app import app

    monkeypatch.setattr(data, "engine", lambda: filled)
    runner = CliRunner()
    out = tmp_path / "candles.json"
    result = runner.invoke(
        app,
        ["data", "export", "candles", "--symbol", "ADA/BTC", "--format", "json", "--out",
         str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["open"] for r in rows] == ["0.0000533"]
    result = runner.invoke(
        app, ["data", "export", "ticks", "--since", "2024-01-02", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("source,coin,market,ts,bid,ask,last")
    assert lines[1].startswith("coinspot,eth,aud,2024-01-02T00:00:00Z,3500,3501,3500.5")
    for args in (["nope"], ["candles", "--format", "xml"], ["candles", "--since", "yesterday"]):
        bad = runner.invoke(app, ["data", "export", *args])
        assert bad.exit_code == 2, bad.output
        assert "Traceback" not in bad.output


def test_every_ledger_kind_exports_with_coin_filters(engine: Engine) -> None:
    import io
    import json as _json
    from datetime import UTC, datetime

    from omc.core.upsert import upsert
    from omc.ledgers.export import EXPORTS, export
    from omc.ledgers.models import NewsItem

    assert set(EXPORTS) >= {
        "ticks",
        "candles",
        "protocols",
        "onchain",
        "news",
        "social",
        "sentiment",
        "events",
    }
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    upsert(
        engine,
        NewsItem.__table__,
        [
            {
                "source": "rss",
                "source_id": str(i),
                "url": None,
                "title": f"t{i}",
                "summary": None,
                "published_at": when,
                "sentiment": 0.1,
                "coins": coins,
                "story_key": None,
                "raw": None,
            }
            for i, coins in enumerate((["BTC"], ["ETH", "BTC"], ["SOL"]))
        ],
    )
    for kind in EXPORTS:
        out = io.StringIO()
        export(engine, kind, out, fmt="json")
        _json.loads(out.getvalue())
    out = io.StringIO()
    assert export(engine, "news", out, fmt="json", symbol="btc") == 2
    rows = _json.loads(out.getvalue())
    assert [r["source_id"] for r in rows] == ["0", "1"]
    assert rows[0]["published_at"] == "2024-05-01T12:00:00Z"


def test_csv_neutralises_formula_text_but_keeps_negative_numbers(engine: Engine) -> None:
    from omc.ledgers.models import NewsItem

    titles = ['=HYPERLINK("http://evil.example","click")', "+1 BTC", "@SUM(A1)", "-2+3+cmd|x"]
    upsert(
        engine,
        NewsItem.__table__,
        [
            {"source": "rss", "source_id": f"id{i}", "url": None, "title": title,
             "summary": "-5.25", "published_at": utc(f"2024-01-0{i + 1}T00:00"),
             "sentiment": -0.75, "coins": ["BTC"], "story_key": None, "raw": None,
             "collected_at": COLLECTED}
            for i, title in enumerate(titles)
        ],
    )  # fmt: skip
    out = io.StringIO()
    assert export(engine, "news", out) == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["title"] for r in rows] == ["'" + t for t in titles]
    assert {r["sentiment"] for r in rows} == {"-0.75"} and {r["summary"] for r in rows} == {"-5.25"}
    json_out = io.StringIO()
    export(engine, "news", json_out, fmt="json")
    assert [r["title"] for r in json.loads(json_out.getvalue())] == titles  # JSON is not a sheet


def test_backtest_trades_csv_neutralises_text_cells(tmp_path: Path) -> None:
    from omc.core.csv_cells import safe_cell
    from omc.floor.backtest.export import write_trades
    from omc.floor.orders import TradeRecord

    trade = TradeRecord(
        "=cmd|'/C calc'!A0", "long", 0, utc("2024-01-01T00:00"), quantity=Decimal(1),
        entry_value=Decimal(100), pnl=Decimal("-12.5"),
    )  # fmt: skip
    result = SimpleNamespace(trades=[trade])
    write_trades(result, tmp_path / "trades.csv")  # type: ignore[arg-type]
    (row,) = list(csv.DictReader((tmp_path / "trades.csv").open()))
    assert row["symbol"] == "'=cmd|'/C calc'!A0" and row["pnl"] == "-12.5"
    assert safe_cell(Decimal("-3")) == Decimal("-3") and safe_cell("-3.5e-2") == "-3.5e-2"
