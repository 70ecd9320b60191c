"""The backtest benchmark compares like with like: before an engine is timed its run must make
OMC's trades (same entry bars, final equity within a tolerance). Checked here on a small
slice: OMC's exact event-driven engine always; backtrader, backtesting.py and vectorbt when
installed (they are bench extras, not in CI); and a run that differs is refused."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_backtest", ROOT / "benchmarks" / "backtest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_backtest"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bars(bench: ModuleType) -> object:
    return bench.synthetic(bench.load_csv(bench.CSV), 3000, seed=42)


def test_the_check_refuses_other_trades_or_equity(bench: ModuleType, bars: object) -> None:
    ref = bench.omc_fast(bars)
    assert len(ref.entries) > 20
    ok, line = bench.agreement("OMC event-driven", ref, bench.omc_event(bars), 1e-9)
    assert ok and "agrees" in line and f"the same {len(ref.entries)} trades" in line
    fewer = replace(ref, entries=ref.entries[:-1])
    ok, line = bench.agreement("peer", ref, fewer, 1e-9)
    assert not ok and "DISAGREES" in line and "not timed" in line
    richer = replace(ref, growth=ref.growth * 1.001)
    assert not bench.agreement("peer", ref, richer, 1e-6)[0]


@pytest.mark.parametrize(("name", "tol"), [("backtrader_", 1e-9), ("backtesting_py", 1e-9)])
def test_installed_peers_make_omcs_trades(
    bench: ModuleType, bars: object, name: str, tol: float
) -> None:
    engine = getattr(bench, name)()
    if engine is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[bench]')")
    ok, line = bench.agreement(name, bench.omc_fast(bars), engine(bars), tol)
    assert ok, line


def test_vectorbt_makes_omcs_trades_single_and_sweep(bench: ModuleType, bars: object) -> None:
    single, sweep = bench.vectorbt_()
    if single is None or sweep is None:
        pytest.skip("vectorbt is not installed (pip install -e '.[bench]')")
    ok, line = bench.agreement("vectorbt", bench.omc_fast(bars), single(bars), 1e-6)
    assert ok, line
    rows = bench.run_sweep("sma_cross", bars, bench.GRID, workers=1)
    ok, line = bench.sweep_agreement(rows, sweep(bars))
    assert ok, line
