"""Many Lab sessions at once through the graph: 50 concurrent sessions on small data, on
SQLite and PostgreSQL, spread over worker processes that each run their share in threads.

    python benchmarks/lab_concurrency.py [--sessions 50] [--processes 2] [--datasets 5]
                                         [--pg-url URL] [--backends sqlite,postgresql]
                                         [--planner deterministic|fake-llm]

Each session runs its own thread id (its session id) with the deterministic planner on a small
study (1,500 hourly bars, returns + volatility, logistic regression, one trial, 3 folds)
and stops at the approval gate. Every session reads its own copy of one of `--datasets`
candle files, so no two share a sealed holdout. First each dataset runs solo (one session at
a time, a fresh database); then all sessions start at once. Checks: every session reaches
`pending_approval`; its report.json equals its dataset's solo report (ids, times, durations
and the file's path masked) — nothing interferes; its event seqs are 1..n. Prints p50 / p99
session time (start to the gate), wall time, and the peak RSS of the worker processes.

`--planner fake-llm` plans every session with the LLM planner against the local fake
OpenAI-compatible server (tests/fakes/openai_server.py, real HTTP through LangChain): each
session's planning call is answered with a `propose_plan` tool call for the same small study,
its narrative call with a fixed text — so the reports must still match their solo runs.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARS = 1500
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# times, durations, the hashes that cover the data file's path (each session reads its own
# copy), and the LLM's token counts and cost (its prompt names that path too)
_MASK = re.compile(
    r'("(?:generated_at|created_at|content_hash|plan_sha256)": ")[^"]*"|'
    r'("seconds": )[0-9.e-]+|("[a-z_]*tokens": )[0-9]+|("[a-z_]*cost[a-z_]*": )[0-9.e-]+'
)
ID = re.compile(r"L\d{8}-[0-9a-f]{6}")


def write_data(folder: Path, datasets: int) -> list[Path]:
    from tests.test_lab_cli import write_candles

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(datasets):
        (folder / f"d{k}").mkdir()
        signal = 0.6 if k % 2 else 0.0
        files.append(
            write_candles(folder / f"d{k}" / "BTC_USDT-1h.csv", signal=signal, seed=k, n=BARS)
        )
    return files


def plan_for(data: Path) -> dict[str, Any]:
    return {
        "goal": "Predict BTC/USDT direction next hour (concurrency benchmark)",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "data_file": str(data),
        "features": ["returns", "volatility"],
        "models": ["logistic"],
        "trials": 1,
        "as_of": "2025-06-01T00:00:00Z",
        "evaluation": {"folds": 3},
    }


KEY = "sk-omc-bench-0123456789abcdefXYZW"
GOAL = "Does a volume spike predict the next BTC/USDT hour?"
PROPOSAL = {
    "symbol": "BTC/USDT",
    "timeframe": "1h",
    "features": ["returns", "volatility"],
    "models": ["logistic"],
    "trials": 1,
    "folds": 3,
    "rationale": "a small benchmark study",
}


def fake_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The fake LLM: plan the small study when offered tools, else a fixed narrative."""
    from tests.fakes.openai_server import call, text, tool_calls

    if body.get("tools"):
        return tool_calls(call("propose_plan", PROPOSAL))
    return text("A small study of whether recent returns and volatility lead the next hour.")


def settings_for(data_dir: Path, llm_url: str | None) -> Any:
    from omc.core.config import Settings

    if llm_url is None:
        return Settings(data_dir=data_dir)
    from types import SimpleNamespace

    from omc.lab.agents.settings import LlmSettings

    llm = LlmSettings(  # type: ignore[call-arg]
        _env_file=None,
        provider="openai-compatible",
        base_url=llm_url,
        api_key=KEY,
        model="gpt-4o-mini",
        max_retries=0,
        timeout_s=120,
    )
    return SimpleNamespace(**dict(Settings(data_dir=data_dir)), llm=llm)


def start_session(rt: Any, data: Path, llm_url: str | None) -> Any:
    from omc.lab.graph import driver

    if llm_url is None:
        return driver.start(rt, "concurrency", base_plan=plan_for(data))
    options = {"data_file": str(data), "trials": 1, "as_of": "2025-06-01T00:00:00+00:00"}
    return driver.start(rt, GOAL, options=options)


def normalised_report(report: Path, data: Path) -> str:
    text = report.read_text().replace(str(data), "DATA")
    return ID.sub("ID", _MASK.sub(lambda m: "".join(g or "" for g in m.groups()) + "#", text))


def _engine(url: str) -> Any:
    from omc.core.db import make_engine

    return make_engine(url)


def run_sessions(
    url: str, lab_dir: str, files: list[str], out: Any, llm_url: str | None = None
) -> None:
    """A worker process: one thread per session, all started at once; results to `out`."""
    from omc.lab.graph.nodes import Runtime
    from omc.lab.session import events

    engine = _engine(url)
    rt = Runtime(engine, Path(lab_dir), settings_for(Path(lab_dir).parent, llm_url))
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(len(files))

    def one(file: str) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            outcome = start_session(rt, Path(file), llm_url)
            seconds = time.perf_counter() - started
            seqs = [e.seq for e in events.read(engine, outcome.session)]
            results.append(
                {
                    "file": file,
                    "session": outcome.session,
                    "status": outcome.status,
                    "error": outcome.error,
                    "report": str(outcome.report),
                    "seconds": seconds,
                    "seqs_ok": seqs == list(range(1, len(seqs) + 1)),
                }
            )
        except Exception as exc:  # reported, counted as a failure
            results.append({"file": file, "status": "crashed", "error": repr(exc)})

    threads = [threading.Thread(target=one, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put({"results": results, "rss_mb": rss_mb})
    engine.dispose()


def fresh_database(backend: str, work: Path, pg_url: str) -> tuple[str, Any]:
    """(url, cleanup) of a new migrated database."""
    from sqlalchemy import text

    from omc.migrations import upgrade

    if backend == "sqlite":
        url = f"sqlite:///{work / f'omc-{uuid.uuid4().hex[:6]}.db'}"
        engine = _engine(url)
        upgrade(engine)
        engine.dispose()
        return url, lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = _engine(pg_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.commit()
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    engine = _engine(url)
    upgrade(engine)
    engine.dispose()

    def cleanup() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.commit()
        admin.dispose()

    return url, cleanup


def solo_reports(url: str, work: Path, datasets: list[Path], llm_url: str | None) -> dict[str, str]:
    from omc.lab.graph.nodes import Runtime

    engine = _engine(url)
    rt = Runtime(engine, work / "solo" / "lab", settings_for(work / "solo", llm_url))
    reports: dict[str, str] = {}
    for data in datasets:
        outcome = start_session(rt, data, llm_url)
        assert outcome.status == "pending_approval", outcome.error
        reports[data.parent.name] = normalised_report(
            Path(str(outcome.report)).with_suffix(".json"), data
        )
    engine.dispose()
    return reports


def bench(
    backend: str, args: argparse.Namespace, work: Path, datasets: list[Path]
) -> dict[str, Any]:
    solo_url, solo_cleanup = fresh_database(backend, work, args.pg_url)
    try:
        solo = solo_reports(solo_url, work, datasets, args.llm_url)
    finally:
        solo_cleanup()
    copies = work / f"copies-{backend}"
    copies.mkdir()
    files: list[tuple[Path, Path]] = []
    for k in range(args.sessions):
        source = datasets[k % len(datasets)]
        copy = copies / f"{k:03d}" / source.name  # the file name says the series
        copy.parent.mkdir()
        shutil.copyfile(source, copy)
        files.append((source, copy))
    url, cleanup = fresh_database(backend, work, args.pg_url)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    shares = [[str(c) for _, c in files[p :: args.processes]] for p in range(args.processes)]
    started = time.perf_counter()
    workers = [
        ctx.Process(
            target=run_sessions,
            args=(url, str(work / f"conc-{backend}" / "lab"), share, out, args.llm_url),
        )
        for share in shares
    ]
    try:
        for w in workers:
            w.start()
        collected = [out.get(timeout=600) for _ in workers]
        for w in workers:
            w.join(timeout=60)
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
        cleanup()
    wall = time.perf_counter() - started
    results = [r for c in collected for r in c["results"]]
    source_of = {str(copy): source for source, copy in files}
    done = [r for r in results if r["status"] == "pending_approval"]
    mismatches = []
    for r in done:
        mine = normalised_report(Path(r["report"]).with_suffix(".json"), Path(r["file"]))
        alone = solo[source_of[r["file"]].parent.name]
        if mine != alone:
            first = next(
                (a, b)
                for a, b in zip(mine.splitlines(), alone.splitlines(), strict=False)
                if a != b
            )
            mismatches.append(f"{r['session']}: {first[0].strip()} != {first[1].strip()} (solo)")
    matching = len(done) - len(mismatches)
    times = sorted(r["seconds"] for r in done)
    failures = [r for r in results if r["status"] != "pending_approval"]
    return {
        "backend": backend,
        "sessions": len(results),
        "finished": len(done),
        "match_solo": matching,
        "seqs_ok": sum(bool(r.get("seqs_ok")) for r in done),
        "p50": statistics.median(times) if times else float("nan"),
        "p99": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
        if times
        else float("nan"),
        "wall": wall,
        "rss": max(c["rss_mb"] for c in collected),
        "failures": [f"{r['file']}: {r['error']}" for r in failures][:3] + mismatches[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--planner", choices=("deterministic", "fake-llm"), default="deterministic")
    args = parser.parse_args()
    args.llm_url = None
    rows = []
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="omc-lab-conc-")))
        if args.planner == "fake-llm":
            from tests.fakes.openai_server import FakeOpenAI

            fake = FakeOpenAI(KEY).start()
            stack.callback(fake.stop)
            budget = 4 * args.sessions + 4 * args.datasets * len(args.backends.split(","))
            fake.say(*[fake_reply] * budget)  # stateless: concurrent sessions cannot interleave
            args.llm_url = fake.base_url
        datasets = write_data(work / "data", args.datasets)
        for backend in args.backends.split(","):
            rows.append(bench(backend.strip(), args, work, datasets))
    print(
        f"\n{args.sessions} concurrent Lab sessions, {args.planner} planner "
        f"({args.processes} processes x "
        f"~{-(-args.sessions // args.processes)} threads), {BARS} bars each, "
        f"{args.datasets} datasets\n"
    )
    print(
        "| backend | finished | = solo report | event seqs 1..n | p50 s | p99 s | wall s "
        "| peak RSS / process |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for r in rows:
        print(
            f"| {r['backend']} | {r['finished']}/{r['sessions']} "
            f"| {r['match_solo']}/{r['sessions']} "
            f"| {r['seqs_ok']}/{r['sessions']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['wall']:.1f} "
            f"| {r['rss']:.0f} MB |"
        )
        ok &= r["finished"] == r["match_solo"] == r["seqs_ok"] == r["sessions"]
        for failure in r["failures"]:
            print(f"  failed: {failure}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
