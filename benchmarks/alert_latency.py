"""Listing-alert latency (publication -> alert) and catalyst collector throughput.

Latency: a local Zendesk help centre publishes listing articles at uniformly random moments;
the real `AnnouncementsCollector` polls it on its interval (conditional requests), the runner
stores, the `AlertEngine` raises the alert on the bus. Latency = time of the `alert.raised`
event minus the moment the article became visible on the server (both `time.monotonic()`).
To keep the run bounded, the `--trials` publications of one interval share one poller and are
spread over `--window` polls (independent random moments relative to the poll phase: the same
distribution as one trial at a time, without 100 x 20 s of wall time). The theoretical bound
is `interval + processing`: a publication waits at most one interval for the next poll.

Throughput: one collection of a large generated payload (SEC: arrays of `--sec-filings`
filings; Zendesk: `--articles` articles in pages of 100), parsed, validated and stored in a
fresh SQLite database; items/s = items fetched / wall time of the run.

Run: `python -m benchmarks.alert_latency [--trials 100] [--intervals 5,20] [--window 5]`.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the local fake servers

from omc.core.config import Settings
from omc.core.db import make_engine
from omc.core.events import EventBus
from omc.ledgers.catalyst.alerts import AlertEngine
from omc.ledgers.catalyst.announcements import AnnouncementsCollector
from omc.ledgers.catalyst.sec import SecCollector
from omc.ledgers.collectors.base import CollectorRunner
from omc.migrations import upgrade
from tests.fakes.sec_server import FakeSec
from tests.fakes.zendesk_server import FakeZendesk


def fresh_engine(directory: Path, name: str) -> Any:
    engine = make_engine(f"sqlite:///{directory / name}.db")
    upgrade(engine)
    return engine


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure_latency(interval: float, trials: int, window_polls: float, tmp: Path) -> list[float]:
    server = FakeZendesk().start()
    engine = fresh_engine(tmp, f"latency_{interval:g}")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        announcements_base_url=server.url,
        announcements_interval_s=max(5.0, interval),
        http_timeout_s=5,
    )
    bus = EventBus()
    alerted: dict[str, float] = {}
    bus.subscribe("alert.raised", lambda _t, e: alerted.setdefault(e["event_id"], time.monotonic()))
    alerts = AlertEngine(engine, bus, []).attach()
    collector = AnnouncementsCollector.from_settings(settings, engine=engine, per_page=100)
    runner = CollectorRunner(engine, bus)
    stop = threading.Event()

    def poll() -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            runner.run(collector)
            next_at += interval
            stop.wait(max(0.0, next_at - time.monotonic()))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    window = window_polls * interval
    start = time.monotonic() + random.uniform(0, interval)  # random phase vs. the poller
    moments = sorted(start + random.uniform(0, window) for _ in range(trials))
    ids = []
    for i, moment in enumerate(moments):
        time.sleep(max(0.0, moment - time.monotonic()))
        ids.append(str(server.publish(f"New Listing: Bench{i} (BX{i})", "<p>now available</p>")))
    deadline = time.monotonic() + 2 * interval + 5
    while time.monotonic() < deadline and len([i for i in ids if i in alerted]) < len(ids):
        time.sleep(0.05)
    stop.set()
    poller.join(timeout=interval + 5)
    published = {str(k): v for k, v in server.published.items()}
    server.stop()
    alerts.close()
    missing = [i for i in ids if i not in alerted]
    if missing:
        print(f"  !! {len(missing)} publication(s) never alerted")
    return [alerted[i] - published[i] for i in ids if i in alerted]


def sec_throughput(filings: int, tmp: Path) -> tuple[int, float]:
    server = FakeSec()
    keys = server.keys
    row = {k: server.companies["320193"]["filings"]["recent"][k][3] for k in keys}
    rows = [
        {**row, "accessionNumber": f"0009{i // 1_000_000:06d}-24-{i % 1_000_000:06d}", "form": f}
        for i, f in zip(
            range(filings), ["8-K", "4", "10-Q", "S-1", "13F-HR"] * filings, strict=False
        )
    ]
    body = server.companies["1679788"]
    body["filings"]["recent"] = {k: [r[k] for r in rows] for k in keys}
    server.start()
    engine = fresh_engine(tmp, "sec_throughput")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        sec_base_url=server.url,
        sec_search_base_url=server.url,
        sec_ciks=["1679788"],
        sec_keywords=[],
        sec_rate_per_s=10,
        http_timeout_s=60,
    )
    started = time.perf_counter()
    summary = CollectorRunner(engine).run(SecCollector.from_settings(settings))
    elapsed = time.perf_counter() - started
    server.stop()
    assert summary.status == "ok", summary.error
    return summary.fetched, elapsed


def zendesk_throughput(articles: int, tmp: Path) -> tuple[int, float]:
    server = FakeZendesk()
    now = datetime.now(UTC)
    for i in range(articles):
        kind = ["New Listing: Coin{i} (C{i}X)", "Maintenance {i}", "Delisting of Old{i} (O{i}X)"][
            i % 3
        ]
        server.publish(kind.format(i=i), "<p>body</p>" * 20, created_at=now - timedelta(minutes=i))
    server.start()
    engine = fresh_engine(tmp, "zendesk_throughput")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, announcements_base_url=server.url, http_timeout_s=60
    )
    collector = AnnouncementsCollector.from_settings(
        settings, engine=engine, per_page=100, max_pages=articles // 100 + 1
    )
    started = time.perf_counter()
    summary = CollectorRunner(engine).run(collector)
    elapsed = time.perf_counter() - started
    server.stop()
    assert summary.status == "ok", summary.error
    return summary.fetched, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--intervals", default="5,20", help="Poll intervals (s), comma separated.")
    parser.add_argument("--window", type=float, default=5, help="Polls the trials spread over.")
    parser.add_argument("--sec-filings", type=int, default=20_000)
    parser.add_argument("--articles", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        print("publication -> alert latency (alert.raised on the bus)")
        print(f"{'interval':>9} {'trials':>6} {'p50':>7} {'p99':>7} {'max':>7} {'bound':>7} target")
        for interval in (float(x) for x in args.intervals.split(",")):
            latencies = measure_latency(interval, args.trials, args.window, tmp)
            p50, p99 = statistics.median(latencies), percentile(latencies, 99)
            ok = "met" if p99 <= interval + 1 and p99 < 30 else "MISSED"
            print(
                f"{interval:>8g}s {len(latencies):>6} {p50:>6.2f}s {p99:>6.2f}s "
                f"{max(latencies):>6.2f}s {interval + 1:>6g}s p99 <= interval+1 s and < 30 s: {ok}"
            )
        print("\ncollector throughput (parse + validate + store, SQLite)")
        fetched, elapsed = sec_throughput(args.sec_filings, tmp)
        print(
            f"  sec:           {fetched:>7} items in {elapsed:6.2f}s = {fetched / elapsed:>8.0f}/s"
        )
        fetched, elapsed = zendesk_throughput(args.articles, tmp)
        print(
            f"  announcements: {fetched:>7} items in {elapsed:6.2f}s = {fetched / elapsed:>8.0f}/s"
        )


if __name__ == "__main__":
    main()
