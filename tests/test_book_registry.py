"""The book's strategy registry: paper trading registers its instance (stage `paper`,
idempotently), `omc strategies list --json` (the contract scripts rely on), promotion
criteria and confirmation, demotion, retirement, every change recorded with who and why."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import Engine

from omc.core.config import get_settings
from omc.floor.book import promotion as p
from omc.floor.book import registry as r
from omc.floor.data import Bars, load_csv
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.paper_session import replay_paper
from tests.test_cli_errors import CSV, isolated

__all__ = ["isolated"]  # autouse: a fresh data dir and settings per test

PARAMS = {"fast": 12, "slow": 48, "size": 0.4}
EASY = p.BookSettings(paper_min_days=2, paper_min_trades=5, live_small_min_days=2)


def _bars(tmp_path: Path, rows: int = 800) -> Bars:
    lines = CSV.read_text().splitlines(keepends=True)
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(lines[0] + "".join(lines[1 : 1 + rows]))
    return load_csv(path)


def _replay(engine: Engine, bars: Bars, account: str = "paper-x", **params: float) -> None:
    replay_paper(
        engine,
        make_strategy("sma_cross", PARAMS | params),
        bars,
        account=account,
        settings=get_settings(),
        limits=GuardLimits(),
        cash=D(10000),
    )


def _within(entry: r.Entry) -> p.Check:
    return p.Check("divergence", True, "within bounds (test)")


def test_paper_trading_registers_its_instance_once(engine: Engine, tmp_path: Path) -> None:
    bars = _bars(tmp_path, 300)
    _replay(engine, bars)
    _replay(engine, bars)  # the same instance: found again, not added
    _replay(engine, bars, account="paper-y")  # another account: another instance
    rows = r.entries(engine)
    assert [(e.name, e.account, e.stage) for e in rows] == [
        ("sma_cross", "paper-x", "paper"),
        ("sma_cross", "paper-y", "paper"),
    ]
    e = rows[0]
    assert e.params == {"fast": 12, "size": 0.4, "slow": 48}
    assert e.origin["kind"] == "paper-trading" and len(e.version) == 12
    assert e.id == r.instance_id("paper-x", "sma_cross", PARAMS)
    assert [h["kind"] for h in r.history(engine, e.id)] == ["register"]
    assert r.get(engine, e.id[:6]).id == e.id  # a unique prefix is enough


def test_promotion_needs_its_criteria_and_a_person_for_live(engine: Engine, tmp_path: Path) -> None:
    strat = make_strategy("sma_cross", PARAMS)
    e = r.register(engine, strat, "paper-x", actor="ann", reason="from the sweep")
    with pytest.raises(p.PromotionRefused, match="expectations: none"):
        p.promote(engine, p.promote(engine, e.id, actor="ann", reason="x").id, actor="ann",
                  reason="x", confirmed=True, settings=p.BookSettings(paper_min_days=0,
                  paper_min_trades=0), divergence=_within)  # fmt: skip
    e = r.set_expectations(engine, e.id, {"max_drawdown": 0.5}, actor="ann", reason="its OOS")
    e = r.move(engine, e.id, "research", actor="ann", reason="start again")
    assert e.stage == "research"
    e = p.promote(engine, e.id, actor="ann", reason="try it on paper")  # no criteria
    assert e.stage == "paper" and e.stage_mark == -1
    with pytest.raises(p.PromotionRefused) as refused:  # nothing traded yet
        p.promote(
            engine, e.id, actor="ann", reason="x", confirmed=True, settings=EASY, divergence=_within
        )
    assert "days: 0.0 of 2 day(s)" in str(refused.value) and "trades: 0 of 5" in str(refused.value)
    _replay(engine, _bars(tmp_path))  # 800 five-minute bars: 2.8 days
    ev = p.evidence(engine, r.get(engine, e.id))
    assert ev.days == pytest.approx(799 * 300 / 86400) and ev.trades >= 5 and ev.breaches == 0
    with pytest.raises(p.PromotionRefused, match="needs a person's confirmation"):
        p.promote(engine, e.id, actor="ann", reason="x", settings=EASY, divergence=_within)
    strict = p.BookSettings(paper_min_days=30, paper_min_trades=5)
    with pytest.raises(p.PromotionRefused, match=r"days: 2\.8 of 30"):
        p.promote(
            engine,
            e.id,
            actor="ann",
            reason="x",
            confirmed=True,
            settings=strict,
            divergence=_within,
        )
    e = p.promote(
        engine, e.id, actor="ann", reason="3 clean days", confirmed=True, settings=EASY,
        divergence=p.divergence_check(engine, {"BTC/USDT": _bars(tmp_path)}),
    )  # fmt: skip
    assert e.stage == "live-small" and e.stage_mark > 0  # evidence starts again after it
    assert p.evidence(engine, e).trades == 0
    last = r.history(engine, e.id)[-1]
    assert (last["kind"], last["from"], last["to"], last["by"]) == (
        "promote", "paper", "live-small", "ann"
    )  # fmt: skip
    assert last["reason"] == "3 clean days" and last["data"]["confirmed"] is True
    assert {c["name"]: c["ok"] for c in last["data"]["criteria"]}["divergence"] is True
    e = p.demote(engine, e.id, actor="bob", reason="too volatile")
    assert e.stage == "paper"
    e = p.retire(engine, e.id, actor="bob", reason="replaced")
    assert e.stage == "retired"
    with pytest.raises(r.RegistryError, match="retired"):
        p.promote(engine, e.id, actor="bob", reason="again")
    kinds = [(h["kind"], h["to"], h["by"]) for h in r.history(engine, e.id)]
    assert kinds == [
        ("register", "research", "ann"),
        ("promote", "paper", "ann"),
        ("expectations", None, "ann"),
        ("move", "research", "ann"),
        ("promote", "paper", "ann"),
        ("promote", "live-small", "ann"),
        ("demote", "paper", "bob"),
        ("retire", "retired", "bob"),
    ]


def test_divergence_outside_and_limit_breaches_block_promotion(
    engine: Engine, tmp_path: Path
) -> None:
    bars = _bars(tmp_path)
    replay_paper(
        engine,
        make_strategy("sma_cross", PARAMS),
        bars,
        account="paper-x",
        settings=get_settings(),
        limits=GuardLimits(drawdown_warn_pct=D("0.001"), drawdown_halt_pct=D("0.002")),
        cash=D(10000),
        spread_bps=D(60),  # fills 30 bps worse than its backtest assumed
    )
    (e,) = r.entries(engine)
    ev = p.evidence(engine, e)
    assert ev.halts and ev.breaches >= 1
    divergence = p.divergence_check(engine, {"BTC/USDT": bars})
    checks = {c.name: c for c in p.criteria(engine, e, settings=EASY, divergence=divergence)}
    assert not checks["breaches"].ok and "halted" in checks["breaches"].detail
    assert not checks["divergence"].ok and "slippage" in checks["divergence"].detail
    with pytest.raises(p.PromotionRefused, match=r"breaches: .*divergence: "):
        p.promote(engine, e.id, actor="a", reason="x", confirmed=True, settings=EASY)


def test_strategies_list_json_is_the_contract(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    from tests.test_cli_reports import omc_ok

    monkeypatch.setenv("OMC_DATABASE_URL", db_url)
    lines = CSV.read_text().splitlines()[:301]
    Path("short.csv").write_text("\n".join(lines) + "\n")
    replay = ("trade", "paper", "-s", "sma_cross", "--replay", "short.csv", "--account", "p1")
    omc_ok(capsys, *replay)
    omc_ok(capsys, *replay)
    listed = json.loads(omc_ok(capsys, "strategies", "list", "--json")[1])
    assert [(x["name"], x["account"], x["stage"]) for x in listed] == [("sma_cross", "p1", "paper")]
    sid = listed[0]["id"]
    shown = json.loads(
        omc_ok(capsys, "strategies", "show", sid, "--json", "--data", "short.csv")[1]
    )
    assert shown["next_stage"] == "live-small" and shown["evidence"]["trades"] > 0
    code = _omc_code(capsys, "strategies", "promote", sid, "--reason", "looks good", "--by", "ann")
    assert code[0] == 1 and "stays paper" in code[2] and "days:" in code[2]
    _, out, _ = omc_ok(capsys, "strategies", "demote", sid, "--reason", "not ready", "--by", "ann")
    assert "paper → research" in " ".join(out.split())
    listed = json.loads(omc_ok(capsys, "strategies", "list", "--json", "--stage", "research")[1])
    assert [x["id"] for x in listed] == [sid]
    status = " ".join(omc_ok(capsys, "status")[1].split())
    assert f"{sid} sma_cross (p1): research, research" in status
    checked = json.loads(omc_ok(capsys, "strategies", "check", "--json")[1])
    assert checked == []  # research is not watched
    omc_ok(capsys, "strategies", "promote", sid, "--reason", "paper again")
    (row,) = json.loads(omc_ok(capsys, "strategies", "check", "--json")[1])
    assert (row["id"], row["stage"], row["status"]) == (sid, "paper", "unwatched")
    report = json.loads(omc_ok(capsys, "status", "--json")[1])
    assert report["strategies"][0]["health"] == "unwatched"
    omc_ok(capsys, "strategies", "halt-book", "--reason", "review")
    replay_b = (*replay[:-1], "p2")
    summary = json.loads(omc_ok(capsys, *replay_b, "--json")[1])
    assert summary["trades"] == 0 and summary["denials"]["portfolio_kill_switch"] > 0
    omc_ok(capsys, "strategies", "halt-book", "--clear")
    code = _omc_code(capsys, "strategies", "show", "nope")
    assert code[0] == 2 and "no registered strategy 'nope'" in code[2]


def _omc_code(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from omc.cli.app import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())
