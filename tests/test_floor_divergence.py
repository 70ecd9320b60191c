"""`omc floor divergence`: an account's fills against its backtest on the same period."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from omc.core.config import get_settings
from omc.floor.backtest.engine import run_backtest
from omc.floor.data import Bars, load_csv, load_db, to_decimal
from omc.floor.divergence import Thresholds, divergence_report
from omc.floor.divergence.compare import match
from omc.floor.divergence.sides import Execution, timeframe_of
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.journal import Journal
from omc.floor.trading.paper_session import replay_paper
from omc.ledgers.exchange.candle_files import import_candles

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
PARAMS = {"fast": 12, "slow": 48, "size": 0.4}
ROWS = 800


def _candles(tmp_path: Path, first: int = 0, rows: int = ROWS) -> Path:
    lines = CSV.read_text().splitlines(keepends=True)
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(lines[0] + "".join(lines[1 + first : 1 + first + rows]))
    return path


def _replay(engine: Engine, bars: Bars, account: str) -> None:
    replay_paper(
        engine,
        make_strategy("sma_cross", PARAMS),
        bars,
        account=account,
        settings=get_settings(),
        limits=GuardLimits(),
        cash=D(10000),
    )


def test_paper_replay_is_within_its_backtest(engine: Engine, tmp_path: Path) -> None:
    """The bundled candles in the Exchange ledger, replayed through paper trading, judged
    against the backtest re-run from the ledger (timeframe inferred from the journal)."""
    import_candles(engine, _candles(tmp_path), "demo", "BTC/USDT", "5m")
    _replay(engine, load_db(engine, "BTC/USDT", "5m", exchange="demo"), "paper-x")
    report = divergence_report(engine, "paper-x")
    assert report.verdict == "within", report.comparisons[0].reasons
    (c,) = report.comparisons
    s = c.stats
    assert s["reference_trades"] > 10 and s["missed"] == 0 and s["extra"] == 0
    assert s["matched"] == s["reference_trades"] == s["actual_trades"]
    assert abs(s["mean_slippage_bps"]) < 1 and s["p95_abs_slippage_bps"] < 5
    assert s["mean_fee_bps_diff"] == 0 and s["pnl_gap_pct"] < D("0.1")
    assert report.strategy == "sma_cross" and report.symbols == ("BTC/USDT",)
    assert report.bar_seconds == 300
    assert json.dumps(report.as_dict(), default=str)  # serialisable


def _scripted(
    engine: Engine,
    account: str,
    bars: Bars,
    *,
    shift_bars: int = 0,
    price_bps: D = D(0),
    fee_bps: D = D(10),
    drop_round_trips: tuple[int, ...] = (),
) -> int:
    """A journal written by hand from the backtest's fills, altered as asked; returns the
    number of backtest executions. Dropped round trips are journaled as denials."""
    bt = run_backtest(make_strategy("sma_cross", PARAMS), bars, cash=D(10000))
    j = Journal.open(engine, account, write=True)
    step = timedelta(seconds=bars.bar_seconds)
    params = {k: repr(v) for k, v in PARAMS.items()}
    start = {"initial_cash": D(10000), "venue": "coinspot", "strategy": "sma_cross"}
    j.append("start", {**start, "params": params, "symbols": ["BTC/USDT"]}, ts=bars.time(0))
    fills = {f.index: f for f in bt.fills}
    k = price_bps / 10000
    for i in range(len(bars)):
        ts = bars.time(i) + step
        f = fills.get(i + 1 - shift_bars)  # bar i closes at fill bar i+1's open
        if f is not None:
            trip = bt.fills.index(f) // 2
            buy = f.quantity > 0
            if trip in drop_round_trips:
                j.append("denial", {"code": "max_position"}, ts=ts, symbol="BTC/USDT")
            else:
                cid = f"c{f.order_id}"
                side = "buy" if buy else "sell"
                order = {"side": side, "quantity": abs(f.quantity), "type": "market"}
                j.append("order", order, ts=ts, strategy="sma_cross", symbol="BTC/USDT",
                         client_order_id=cid)  # fmt: skip
                price = f.price * (1 + k if buy else 1 - k)
                notional = abs(f.quantity) * price
                update = {"filled": abs(f.quantity), "notional": notional,
                          "fee": notional * fee_bps / 10000, "status": "filled"}  # fmt: skip
                j.append("order_update", update, ts=ts, client_order_id=cid)
        j.append("bar", {"index": i, "marks": {"BTC/USDT": to_decimal(bars.close[i])}}, ts=ts)
    j.close()
    return len(bt.fills)


@pytest.mark.parametrize("shift", [0, 1])
def test_faithful_account_is_within_at_either_fill_convention(
    engine: Engine, tmp_path: Path, shift: int
) -> None:
    """Fills at the backtest's bar (the replay today) or one bar later (next-bar-open
    paper fills) both pair up: the matcher tolerates two bars by default."""
    bars = load_csv(_candles(tmp_path))
    n = _scripted(engine, "acct", bars, shift_bars=shift)
    report = divergence_report(engine, "acct", bars={"BTC/USDT": bars})
    c = report.comparisons[0]
    assert report.verdict == "within", c.reasons
    assert c.stats["matched"] == n and c.stats["mean_abs_dt_s"] == 300.0 * shift


def test_shifted_fills_higher_fees_and_missing_trades_are_outside(
    engine: Engine, tmp_path: Path
) -> None:
    bars = load_csv(_candles(tmp_path))
    n = _scripted(
        engine,
        "live-x",
        bars,
        shift_bars=1,
        price_bps=D(30),
        fee_bps=D(50),
        drop_round_trips=(2, 5),
    )
    report = divergence_report(engine, "live-x", bars={"BTC/USDT": bars})
    assert report.verdict == "outside" and report.venue == "coinspot"
    c = report.comparisons[0]
    s = c.stats
    assert s["missed"] == 4 and s["extra"] == 0 and s["matched"] == n - 4
    assert abs(s["mean_slippage_bps"] - 30) < D("0.5")
    assert abs(s["mean_fee_bps_diff"] - 40) < D("0.5")
    assert c.actual.denials == {"max_position": 4}
    text = " | ".join(c.reasons)
    assert "mean slippage 30." in text and "exceeds the assumed 0 + 10 bps" in text
    assert "fees 40." in text and "above the reference's (limit 2 bps)" in text
    assert "4 missed + 0 extra trade(s)" in text and "denials: max_position: 4" in text
    assert "P&L gap" in text
    # the same account passes with thresholds loose enough for it
    loose = Thresholds(
        max_slippage_bps=D(40),
        max_fee_excess_bps=D(50),
        max_unmatched_pct=D(50),
        max_pnl_gap_pct=D(100),
    )
    again = divergence_report(engine, "live-x", bars={"BTC/USDT": bars}, thresholds=loose)
    assert again.verdict == "within"


def test_match_pairs_nearest_by_symbol_and_side_within_tolerance() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    def ex(minute: int, side: str = "buy", symbol: str = "BTC/AUD") -> Execution:
        t = t0 + timedelta(minutes=minute)
        return Execution(symbol, side, t, D(1), D(100), D("0.1"), f"{side}{minute}", D(100))

    ref = [ex(0), ex(10), ex(20, "sell"), ex(30, symbol="ETH/AUD")]
    act = [ex(1), ex(9), ex(21, "buy"), ex(30, symbol="ETH/AUD"), ex(90)]
    pairs, missed, extra = match(ref, act, tolerance_s=600)
    assert [(p.reference.ref, p.actual.ref) for p in pairs] == [
        ("buy0", "buy1"),
        ("buy10", "buy9"),
        ("buy30", "buy30"),
    ]
    assert [e.ref for e in missed] == ["sell20"]  # a buy is never a sell's twin
    assert sorted(e.ref for e in extra) == ["buy21", "buy90"]
    assert timeframe_of(300) == "5m" and timeframe_of(3600) == "1h" and timeframe_of(86400) == "1d"


def test_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no journal for account 'nope'"):
        divergence_report(engine, "nope")
    j = Journal.open(engine, "idle", write=True)
    j.append("start", {"initial_cash": D(100), "strategy": "sma_cross", "params": {},
                       "symbols": ["BTC/USDT"], "venue": "paper"},
             ts=datetime(2024, 1, 1, tzinfo=UTC))  # fmt: skip
    j.append("bar", {"index": 0, "marks": {}}, ts=datetime(2024, 1, 1, 0, 5, tzinfo=UTC))
    j.close()
    with pytest.raises(LookupError, match="no fills and no denials"):
        divergence_report(engine, "idle")
    bars = load_csv(_candles(tmp_path))
    _scripted(engine, "acct", bars)
    other = load_csv(_candles(tmp_path, first=5000, rows=100))
    with pytest.raises(LookupError, match="no BTC/USDT candles for the account's period"):
        divergence_report(engine, "acct", bars={"BTC/USDT": other})
    with pytest.raises(LookupError, match="no 5m candles for BTC/USDT"):
        divergence_report(engine, "acct")  # nothing in the ledger


def _cli(db_url: str, args: list[str]) -> tuple[int, str, str]:
    from omc.cli import context
    from omc.cli import floor as floor_cli

    app = typer.Typer()
    floor_cli.register(app)

    @app.callback()
    def _root() -> None:
        pass

    get_settings.cache_clear()
    context.engine.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OMC_DATABASE_URL", db_url)
            patch.setattr(context.console, "width", 200)
            res = CliRunner().invoke(app, ["floor", "divergence", *args])
            context.engine().dispose()
    finally:
        get_settings.cache_clear()
        context.engine.cache_clear()
    return res.exit_code, res.stdout, res.stderr


def test_cli_divergence(db_url: str, tmp_path: Path) -> None:
    from omc.core.db import make_engine

    csv = _candles(tmp_path)
    engine = make_engine(db_url)
    bars = load_csv(csv)
    _replay(engine, bars, "paper-a")
    _scripted(engine, "paper-b", bars, shift_bars=1)  # a twin filling one bar later
    _scripted(engine, "live-x", bars, price_bps=D(30), fee_bps=D(50))
    engine.dispose()
    out = tmp_path / "out"
    code, stdout, _ = _cli(db_url, ["--account", "paper-a", "--data", str(csv), "--out", str(out)])
    assert code == 0, stdout
    assert "backtest → account paper-a (paper)" in stdout
    assert "verdict: within" in stdout and "overall verdict: within" in stdout
    saved = json.loads((out / "divergence.json").read_text())
    assert saved["verdict"] == "within" and saved["comparisons"][0]["pairs"]
    assert (out / "divergence_trades.csv").read_text().startswith("comparison,kind,")
    code, stdout, _ = _cli(
        db_url, ["--account", "paper-a", "--data", str(csv), "--against", "paper-b", "--json"]
    )
    assert code == 0
    data = json.loads(stdout)
    assert [c["reference"] for c in data["comparisons"]] == [
        "backtest",
        "backtest",
        "account paper-b (coinspot)",
    ]
    assert data["verdict"] == "within"
    code, stdout, _ = _cli(db_url, ["--account", "live-x", "--data", str(csv), "--strict"])
    assert code == 1 and "verdict: outside" in stdout and "mean slippage 30." in stdout
    for args, message in (
        (["--account", "nope"], "error: no journal for account 'nope'; known: ["),
        (["--account", "paper-a"], "error: no 5m candles for BTC/USDT in the database"),
        (["--account", "paper-a", "--data", str(tmp_path / "missing.csv")], "error: --data:"),
    ):
        code, stdout, stderr = _cli(db_url, args)
        assert code == 2 and stderr.startswith(message), stderr
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
