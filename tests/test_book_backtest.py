"""`omc backtest --book FILE`: strategies run together through the portfolio Guard and their
allocations; with no portfolio limit binding the book is exactly the sum of its parts (each
its own paper replay with the same capital); a binding limit shows in the report."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.floor.book.backtest import BookFileError, load_book, run_book
from omc.floor.data import load_csv
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.paper_session import replay_paper
from tests.test_cli_errors import CSV, isolated

__all__ = ["isolated"]

BOOK = """
cash = 20000
allocation = "equal"
[limits]
{limits}
[[strategy]]
name = "sma_cross"
params = {{ fast = 12, slow = 48, size = 0.4 }}
data = "candles.csv"
[[strategy]]
name = "rsi_revert"
params = {{ period = 14 }}
data = "candles.csv"
"""


def _book(tmp_path: Path, limits: str = "") -> Path:
    lines = CSV.read_text().splitlines(keepends=True)
    (tmp_path / "candles.csv").write_text(lines[0] + "".join(lines[1:700]))
    path = tmp_path / "book.toml"
    path.write_text(BOOK.format(limits=limits))
    return path


def test_the_book_is_the_sum_of_its_parts(engine: Engine, tmp_path: Path) -> None:
    spec = load_book(_book(tmp_path))
    report = run_book(engine, spec, settings=Settings(_env_file=None))
    parts = report["strategies"]
    assert [p["capital"] for p in parts] == [D(10000), D(10000)]
    bars = load_csv(tmp_path / "candles.csv")
    for p, params in zip(
        parts, ({"fast": 12, "slow": 48, "size": 0.4}, {"period": 14}), strict=True
    ):
        alone = replay_paper(
            engine, make_strategy(p["strategy"], params), bars, account=f"alone-{p['strategy']}",
            settings=Settings(_env_file=None), limits=GuardLimits(), cash=D(10000),
        )  # fmt: skip
        assert p["final_equity"] == alone["equity"] and p["trades"] == alone["trades"]
        assert p["trades"] > 0
    assert report["final_equity"] == sum((p["final_equity"] for p in parts), D(0))
    assert sum((p["contribution"] for p in parts), D(0)) == report["final_equity"] - D(20000)


def test_a_binding_portfolio_limit_and_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli_reports import omc_ok

    path = _book(tmp_path, "max_coin_gross = 5000")
    _, out, _ = omc_ok(capsys, "backtest", "--book", str(path), "--json")
    report = json.loads(out)
    sma, rsi = report["strategies"]
    assert report["limits"] == {"max_coin_gross": "5000", "correlation": 0.8}
    assert sma["trades"] > 0 and rsi["trades"] > 0
    free = json.loads(omc_ok(capsys, "backtest", "--book", str(_book(tmp_path)), "--json")[1])
    # the limit binds: buys were sized to what the book had left
    assert [p["final_equity"] for p in (sma, rsi)] != [
        p["final_equity"] for p in free["strategies"]
    ]
    _, text, _ = omc_ok(capsys, "backtest", "--book", str(path))
    assert "book: 20,000.00 → " in text and "max drawdown" in text
    (tmp_path / "bad.toml").write_text("[[strategy]]\nname = 'sma_cross'\n")
    with pytest.raises(BookFileError, match="needs a name and a data file"):
        load_book(tmp_path / "bad.toml")
