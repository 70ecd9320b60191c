"""SEC EDGAR and CoinSpot announcements collectors against faulty local servers.

The fakes speak the real paths and bodies (`tests/fakes/sec_server.py`,
`tests/fakes/zendesk_server.py`). Every DB test runs on SQLite and PostgreSQL. Outcome checked
everywhere: zero good items lost, zero duplicates, bad items quarantined with a reason, runs
truthful.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from omc.core.config import Settings
from omc.core.events import EventBus
from omc.ledgers.catalyst.announcements import AnnouncementsCollector
from omc.ledgers.catalyst.classify import classify_announcement, classify_form, extract_coins
from omc.ledgers.catalyst.sec import Filing, SecClient, SecCollector, SecError, cik10
from omc.ledgers.collectors.base import CollectorRunner
from omc.ledgers.models import (
    CatalystEvent,
    CatalystEventRevision,
    CollectorRun,
    HttpValidator,
    QuarantinedItem,
)
from tests.fakes.notify_server import Fault, Reply, Request
from tests.fakes.sec_server import APPLE, CRYPTO, FakeSec, running_sec
from tests.fakes.zendesk_server import ANNOUNCEMENTS, HELP_SECTION, FakeZendesk, running, seed

# 25 Apple recent + 6 new Coinbase (1 shared) + 5 new overflow (1 repeated) + 1 search-only
SEC_EVENTS = 37
APPLE_SUBMISSIONS = f"/submissions/CIK{int(APPLE):010d}.json"


@pytest.fixture
def sec() -> Iterator[FakeSec]:
    yield from running_sec()


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    yield from running(FakeZendesk())


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "http_timeout_s": 0.3,
        "http_max_retries": 3,
        "http_backoff_base_s": 0.01,
        "http_backoff_max_s": 0.05,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def sec_collector(server: FakeSec, *, real_sleep: bool = False, **values: Any) -> SecCollector:
    """Rate limit and retry waits are skipped (`sleep` no-op) unless `real_sleep`."""
    values.setdefault("sec_ciks", [APPLE, CRYPTO])
    values.setdefault("sec_keywords", ["bitcoin"])
    kwargs: dict[str, Any] = {} if real_sleep else {"sleep": lambda _s: None}
    return SecCollector.from_settings(
        settings(
            sec_base_url=server.url,
            sec_search_base_url=server.url,
            sec_rate_per_s=10,
            sec_user_agent="OhMyCoins tests ops@example.org",
            **values,
        ),
        **kwargs,
    )


def events(engine: Engine, source: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(CatalystEvent).where(CatalystEvent.source == source)).all()
    return {row.event_id: row for row in rows}


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def quarantined(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(QuarantinedItem.reason))]


# ------------------------------------------------------------------ classification


def test_sec_forms_are_classified_with_an_impact() -> None:
    assert classify_form("8-K") == ("current_report", 0.7)
    assert classify_form("8-K", "1.05,9.01")[1] == pytest.approx(0.9)
    assert classify_form("S-1")[0] == "registration"
    assert classify_form("10-K")[0] == "annual_report"
    assert classify_form("10-Q")[0] == "quarterly_report"
    assert classify_form("4")[0] == "insider_trade"
    assert classify_form("13F-HR")[0] == "holdings_13f"
    assert classify_form("S-1/A")[1] < classify_form("S-1")[1]
    assert classify_form("XYZ") == ("other_filing", 0.1)


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("New Listing: Render (RNDR)", "listing"),
        ("RNDR is now available on CoinSpot", "listing"),
        ("Delisting of Terra Classic (LUNC)", "delisting"),
        ("Trading halted for XRP", "trading_halt"),
        ("Scheduled maintenance this Sunday", "maintenance"),
        ("Introducing recurring buys", "feature"),
        ("How do I verify my identity?", "other"),
    ],
)
def test_announcements_are_classified(title: str, kind: str) -> None:
    assert classify_announcement(title) == kind


def test_coins_are_extracted() -> None:
    assert extract_coins("New Listing: Render (RNDR) and $PEPE", "<p>BONK/AUD live (AUD)</p>") == [
        "RNDR",
        "PEPE",
        "BONK",
    ]


# ------------------------------------------------------------------ SEC


def test_sec_collects_classifies_and_deduplicates(engine: Engine, sec: FakeSec) -> None:
    runner = CollectorRunner(engine)
    collector = sec_collector(sec)
    summary = runner.run(collector)
    assert summary.status == "ok", summary.error
    stored = events(engine, "sec")
    assert len(stored) == SEC_EVENTS
    assert summary.inserted == 2 * SEC_EVENTS  # one event + one revision per filing
    assert count(engine, CatalystEventRevision) == SEC_EVENTS
    coinbase_8k = stored["0001679788-24-000001"]
    assert coinbase_8k.kind == "current_report" and coinbase_8k.impact == pytest.approx(0.8)
    assert coinbase_8k.payload["keywords"] == ["bitcoin"] and coinbase_8k.coins == ["BTC"]
    assert stored["0001193125-24-000777"].kind == "registration"  # search-only hit
    assert {"8-K", "S-1", "10-K", "10-Q", "4", "13F-HR", "8-K/A"} <= {
        e.payload["form"] for e in stored.values()
    }
    # fair access: a descriptive User-Agent with a contact address on every request
    assert all("@" in r.headers["user-agent"] for r in sec.requests)
    assert any(p.endswith("-submissions-001.json") for p in sec.paths())

    again = runner.run(collector)
    assert (again.status, again.inserted, again.updated) == ("ok", 0, 0)
    assert not any(
        p.endswith("-submissions-001.json") for p in sec.paths()[len(sec.requests) - 4 :]
    )
    assert len(events(engine, "sec")) == SEC_EVENTS


def test_sec_shares_one_rate_limit_under_ten_per_second(sec: FakeSec) -> None:
    collector = sec_collector(sec, real_sleep=True)
    client = collector.client
    assert client.data.limiter is client.search_http.limiter
    assert client.data.limiter is not None and client.data.limiter.rate <= 10
    collector.collect()
    times = sorted(r.at for r in sec.requests)
    span = times[-1] - times[0]
    assert len(times) >= 4 and (len(times) - 1) / span <= 10.5  # never a burst


def test_unknown_cik_is_a_clear_error_not_a_crash(engine: Engine, sec: FakeSec) -> None:
    client = sec_collector(sec).client
    with pytest.raises(SecError, match="unknown CIK 999"):
        client.submissions("999")
    assert cik10("320193") == "0000320193"
    summary = CollectorRunner(engine).run(sec_collector(sec, sec_ciks=["999", APPLE, CRYPTO]))
    assert summary.status == "partial"
    assert "unknown CIK 999" in (summary.error or "")
    assert len(events(engine, "sec")) == SEC_EVENTS

    alone = CollectorRunner(engine).run(sec_collector(sec, sec_ciks=["999"], sec_keywords=[]))
    assert alone.status == "failed" and "unknown CIK 999" in (alone.error or "")


SEC_TRANSIENT = [
    Fault("reset", path=APPLE_SUBMISSIONS),
    Fault("delay", path=APPLE_SUBMISSIONS, seconds=0.6),
    Fault("http", path=APPLE_SUBMISSIONS, status=500),
    Fault("http", path=APPLE_SUBMISSIONS, status=502),
    Fault("http", path=APPLE_SUBMISSIONS, status=503, retry_after="0"),
    Fault("rate_limited", path=APPLE_SUBMISSIONS, retry_after="0.05"),
    Fault("http", path="/LATEST/search-index", status=503),
]


def test_sec_transient_faults_lose_nothing(engine: Engine, sec: FakeSec) -> None:
    """Timeouts, resets, 500/502/503 and 429 + Retry-After: retried, nothing lost."""
    for fault in SEC_TRANSIENT:
        with engine.begin() as conn:
            conn.execute(CatalystEvent.__table__.delete())
            conn.execute(CatalystEventRevision.__table__.delete())
        sec.inject(fault)
        summary = CollectorRunner(engine).run(sec_collector(sec))
        assert summary.status == "ok", (fault, summary.error)
        assert summary.inserted == 2 * SEC_EVENTS, fault
        assert not sec.pending_faults()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault("truncated", path=APPLE_SUBMISSIONS), "invalid JSON"),
        (Fault("html", path=APPLE_SUBMISSIONS, status=200), "HTML page"),
        (Fault("drift", path=APPLE_SUBMISSIONS), "`form` array missing"),
    ],
)
def test_sec_bad_payload_is_quarantined_then_recovered(
    engine: Engine, sec: FakeSec, fault: Fault, reason: str
) -> None:
    runner = CollectorRunner(engine)
    collector = sec_collector(sec)
    summary = runner.run(collector)
    sec.inject(fault)
    summary = runner.run(sec_collector(sec))
    assert summary.status == "partial" and summary.quarantined == 1
    assert any(reason in r for r in quarantined(engine))
    assert len(events(engine, "sec")) == SEC_EVENTS  # the other company and search stored


def test_sec_bad_rows_are_quarantined_one_by_one(engine: Engine, sec: FakeSec) -> None:
    sec.inject(Fault("bad_accession", path=APPLE_SUBMISSIONS))
    summary = CollectorRunner(engine).run(sec_collector(sec))
    assert summary.status == "partial" and summary.quarantined == 1
    assert any("not an accession number" in r for r in quarantined(engine))
    assert len(events(engine, "sec")) == SEC_EVENTS - 1

    sec.inject(Fault("short_array", path=APPLE_SUBMISSIONS))
    summary = CollectorRunner(engine).run(sec_collector(sec))
    assert any("arrays too short" in r for r in quarantined(engine))
    assert len(events(engine, "sec")) == SEC_EVENTS  # the missing one came back


def test_sec_search_drift_is_quarantined(engine: Engine, sec: FakeSec) -> None:
    sec.inject(Fault("no_hits", path="/LATEST/search-index"))
    summary = CollectorRunner(engine).run(sec_collector(sec))
    assert summary.status == "partial"
    assert any("`hits.hits` missing" in r for r in quarantined(engine))
    assert len(events(engine, "sec")) == SEC_EVENTS - 1


def test_acceptance_times_are_new_york_time_stored_as_true_utc(
    engine: Engine, sec: FakeSec
) -> None:
    summary = CollectorRunner(engine).run(sec_collector(sec))
    assert summary.status == "ok", summary.error
    stored = events(engine, "sec")
    # Apple's Q3 FY23 results 8-K: released 4:30 p.m. ET, shown as "16:30:21.000Z"
    assert stored["0000320193-23-000075"].published_at == datetime(
        2023, 8, 3, 20, 30, 21, tzinfo=UTC
    )
    # Form 4 document wk-form4_1691533817.xml was generated at 22:30:17 UTC; accepted
    # "18:30:28.000Z" = 22:30:28 UTC
    assert stored["0000320193-23-000079"].published_at == datetime(
        2023, 8, 8, 22, 30, 28, tzinfo=UTC
    )


def test_search_hits_are_stamped_when_the_filing_surely_existed(
    engine: Engine, sec: FakeSec
) -> None:
    runner = CollectorRunner(engine)
    runner.run(sec_collector(sec))
    # filed 2024-01-05 (EST): accepted by 22:00 New York time, never at midnight before
    ishares = events(engine, "sec")["0001193125-24-000777"]
    assert ishares.published_at == datetime(2024, 1, 6, 3, 0, tzinfo=UTC)
    again = runner.run(sec_collector(sec))
    assert (again.inserted, again.updated) == (0, 0)  # the stamp is kept, no new revision
    filing = Filing.model_validate(
        {"accessionNumber": "0001193125-24-000778", "form": "S-1", "filingDate": "2024-07-01"}
    )
    seen = datetime(2024, 7, 1, 15, 0, tzinfo=UTC)  # seen during its filing day
    assert filing.published_at(seen) == seen
    assert filing.published_at(seen + timedelta(days=1)) == datetime(
        2024,
        7,
        2,
        2,
        0,
        tzinfo=UTC,  # 22:00 EDT
    )


def test_company_filings_all_timing_out_fail_the_run(engine: Engine, sec: FakeSec) -> None:
    sec.inject(*[Fault("delay", path="/submissions/", seconds=0.6) for _ in range(4)])
    summary = CollectorRunner(engine).run(sec_collector(sec, http_max_retries=1))
    assert summary.status == "failed"
    assert (summary.error or "").startswith("company filings: every CIK failed: CIK 320193")
    assert len(events(engine, "sec")) == 2  # the two search hits are still stored


def test_a_search_page_repeating_an_earlier_one_ends_the_walk(engine: Engine, sec: FakeSec) -> None:
    sec.search_ignores_from, sec.search_total = True, 1000
    collector = sec_collector(sec)
    collector.search_pages = 5
    summary = CollectorRunner(engine).run(collector)
    searches = [p for p in sec.paths() if p.startswith("/LATEST/search-index")]
    assert len(searches) == 2
    assert "search 'bitcoin': pagination loop" in (summary.error or "")


def test_sec_client_from_settings_defaults() -> None:
    client = SecClient.from_settings(settings())
    assert client.data.client.headers["user-agent"].endswith("contact@example.com")
    assert str(client.search_http.client.base_url).startswith("https://efts.sec.gov")
    client.close()


# ------------------------------------------------------------------ announcements

NOW = datetime.now(UTC).replace(microsecond=0)


def ann_collector(server: FakeZendesk, engine: Engine, **kwargs: Any) -> AnnouncementsCollector:
    return AnnouncementsCollector.from_settings(
        settings(announcements_base_url=server.url, announcements_interval_s=5),
        engine=engine,
        **kwargs,
    )


def test_announcements_collect_classify_and_poll_conditionally(
    engine: Engine, zendesk: FakeZendesk
) -> None:
    seed(zendesk, NOW)
    runner = CollectorRunner(engine)
    collector = ann_collector(zendesk, engine)
    assert collector.interval_s == 5
    summary = runner.run(collector)
    assert summary.status == "ok", summary.error
    stored = events(engine, "announcements")
    kinds = sorted(e.kind for e in stored.values())
    assert kinds == ["delisting", "listing", "listing", "maintenance"]  # help article skipped
    listing = next(e for e in stored.values() if e.kind == "listing")
    assert listing.coins and listing.coins[0].startswith("CN") and listing.url
    assert count(engine, HttpValidator) == 2
    assert any(
        "/categories/115000579994/articles.json?sort_by=created_at&sort_order=desc" in p
        for p in zendesk.paths()
    )

    before = len(zendesk.requests)
    again = runner.run(collector)
    assert (again.status, again.fetched, again.inserted) == ("ok", 0, 0)
    polls = zendesk.requests[before:]
    assert all("if-none-match" in r.headers for r in polls) and len(polls) == 2

    article = zendesk.publish("Now available: Pepe (PEPE)", "<p>PEPE/AUD</p>")
    third = runner.run(collector)
    assert third.inserted == 2  # the event and its first revision
    assert events(engine, "announcements")[str(article)].coins == ["PEPE"]


def test_if_modified_since_alone_gets_304(engine: Engine, zendesk: FakeZendesk) -> None:
    seed(zendesk, NOW)
    collector = ann_collector(zendesk, engine)
    CollectorRunner(engine).run(collector)
    with engine.begin() as conn:
        conn.execute(HttpValidator.__table__.update().values(etag=None))
    before = len(zendesk.requests)
    summary = CollectorRunner(engine).run(collector)
    assert summary.fetched == 0
    assert all("if-modified-since" in r.headers for r in zendesk.requests[before:])


def test_edited_article_updates_and_adds_a_revision(engine: Engine, zendesk: FakeZendesk) -> None:
    article = zendesk.publish("New Listing: Render (RNDR)", created_at=NOW - timedelta(minutes=5))
    runner = CollectorRunner(engine)
    collector = ann_collector(zendesk, engine)
    runner.run(collector)
    zendesk.edit(article, at=NOW, title="New Listing: Render (RENDER)")
    summary = runner.run(collector)
    # the event updated + both feeds' validators; one revision added
    assert summary.updated == 3 and summary.inserted == 1
    stored = events(engine, "announcements")
    assert len(stored) == 1 and stored[str(article)].title == "New Listing: Render (RENDER)"
    if engine.dialect.name == "sqlite":  # PostgreSQL: JSON columns wait for upsert() (report)
        assert stored[str(article)].coins == ["RENDER"]
    with engine.connect() as conn:
        revisions = conn.execute(
            select(CatalystEventRevision.title, CatalystEventRevision.coins).order_by(
                CatalystEventRevision.revision
            )
        ).all()
    assert [tuple(r) for r in revisions] == [
        ("New Listing: Render (RNDR)", ["RNDR"]),
        ("New Listing: Render (RENDER)", ["RENDER"]),
    ]


class ShiftingZendesk(FakeZendesk):
    """Publishes a new article right after serving page 1: offset paging then repeats one."""

    shifted = False

    def route(self, request: Request) -> Reply:
        reply = super().route(request)
        if not self.shifted and "categories" in request.path and reply.status == 200:
            self.shifted = True
            self.publish("Introducing staking rewards", created_at=NOW)
        return reply


def test_pagination_with_shifting_pages_loses_and_duplicates_nothing(engine: Engine) -> None:
    server = ShiftingZendesk()
    for server_ in running(server):
        for i in range(12):
            server_.publish(
                f"New Listing: Coin{i} (CX{i})", created_at=NOW - timedelta(hours=20 - i)
            )
        collector = ann_collector(server_, engine, per_page=5)
        summary = CollectorRunner(engine).run(collector)
        assert summary.status == "ok"
        pages = [p for p in server_.paths() if "categories" in p]
        assert len(pages) == 3 and "page=3" in pages[-1]
        # page 2 repeated page 1's last article (the list shifted); the late one came through
        # the newest-first feed: 12 + 1 events, each once
        assert summary.fetched == (5 + 5 + 3) + 5  # 3 category pages + the latest feed
        assert summary.inserted == 13 + 13 + 2  # events, revisions, 2 feeds' validators
        assert len(events(engine, "announcements")) == 13
        assert count(engine, CatalystEventRevision) == 13
        summary = CollectorRunner(engine).run(collector)
        assert summary.inserted == 0 and len(events(engine, "announcements")) == 13


def test_a_next_page_pointing_back_to_page_one_is_fetched_once(
    engine: Engine, zendesk: FakeZendesk
) -> None:
    for i in range(12):
        zendesk.publish(f"New Listing: Coin{i} (CX{i})", created_at=NOW - timedelta(hours=i))
    zendesk.loop_next = True
    summary = CollectorRunner(engine).run(ann_collector(zendesk, engine, per_page=5))
    assert summary.status == "partial"
    assert "category: pagination loop" in (summary.error or "")
    assert len([p for p in zendesk.paths() if "categories" in p]) == 1  # not max_pages


def test_cursor_pagination_is_followed(engine: Engine, zendesk: FakeZendesk) -> None:
    for i in range(12):
        zendesk.publish(f"New Listing: Coin{i} (CX{i})", created_at=NOW - timedelta(hours=i))
    zendesk.cursor = True
    summary = CollectorRunner(engine).run(ann_collector(zendesk, engine, per_page=5))
    assert summary.status == "ok", summary.error
    assert len(events(engine, "announcements")) == 12
    pages = [p for p in zendesk.paths() if "categories" in p]
    assert len(pages) == 3 and "page%5Bafter%5D=c10" in pages[-1]


CATEGORY = "/api/v2/help_center/en-us/categories"
ZENDESK_TRANSIENT = [
    Fault("reset", path=CATEGORY),
    Fault("delay", path=CATEGORY, seconds=0.6),
    Fault("http", path=CATEGORY, status=500),
    Fault("http", path=CATEGORY, status=502),
    Fault("http", path=CATEGORY, status=503),
    Fault("rate_limited", path=CATEGORY, retry_after="0.05"),
    Fault("extra_fields"),
    Fault("string_ids"),
]


def test_announcements_faults_lose_nothing(engine: Engine, zendesk: FakeZendesk) -> None:
    """Transient faults and harmless drift (extra fields, string ids): all stored, once."""
    seed(zendesk, NOW)
    for fault in ZENDESK_TRANSIENT:
        with engine.begin() as conn:
            for model in (CatalystEvent, CatalystEventRevision, HttpValidator):
                conn.execute(model.__table__.delete())
        zendesk.inject(fault)
        summary = CollectorRunner(engine).run(ann_collector(zendesk, engine))
        assert summary.status == "ok", (fault, summary.error)
        assert len(events(engine, "announcements")) == 4, fault
        assert count(engine, CatalystEventRevision) == 4, fault


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault("truncated", path="/api/v2/help_center/en-us/categories"), "invalid JSON"),
        (Fault("html", path="/api/v2/help_center/en-us/categories", status=200), "HTML page"),
        (Fault("drift", path="/api/v2/help_center/en-us/categories"), "`articles` list missing"),
    ],
)
def test_announcements_bad_page_quarantined_then_recovered(
    engine: Engine, zendesk: FakeZendesk, fault: Fault, reason: str
) -> None:
    seed(zendesk, NOW)
    zendesk.inject(fault)
    runner = CollectorRunner(engine)
    collector = ann_collector(zendesk, engine)
    summary = runner.run(collector)
    assert summary.status == "partial" and summary.quarantined == 1
    assert any(reason in r for r in quarantined(engine))
    # the failed feed stored no validator, so the next poll is a full one
    summary = runner.run(collector)
    assert summary.status == "ok"
    assert len(events(engine, "announcements")) == 4


def test_bad_article_is_quarantined_alone(engine: Engine, zendesk: FakeZendesk) -> None:
    seed(zendesk, NOW)
    zendesk.inject(Fault("bad_article", path="/api/v2/help_center/en-us/categories"))
    summary = CollectorRunner(engine).run(ann_collector(zendesk, engine))
    assert summary.status == "partial" and summary.quarantined == 1
    assert any("id: Field required" in r for r in quarantined(engine))
    assert len(events(engine, "announcements")) == 4  # the latest feed had it too


def test_every_feed_failing_is_a_failed_run(engine: Engine, zendesk: FakeZendesk) -> None:
    zendesk.inject(*[Fault("http", status=500) for _ in range(8)])
    summary = CollectorRunner(engine, EventBus()).run(ann_collector(zendesk, engine))
    assert summary.status == "failed" and "HTTP 500" in (summary.error or "")
    with engine.connect() as conn:
        run = conn.execute(select(CollectorRun)).one()
    assert run.status == "failed" and run.inserted == 0


def test_general_help_articles_outside_announcements_are_skipped(
    engine: Engine, zendesk: FakeZendesk
) -> None:
    zendesk.publish("How to deposit AUD", section_id=HELP_SECTION)
    zendesk.publish("Now listed: Sui (SUI)", section_id=HELP_SECTION)
    CollectorRunner(engine).run(ann_collector(zendesk, engine))
    assert [e.title for e in events(engine, "announcements").values()] == ["Now listed: Sui (SUI)"]
    assert ANNOUNCEMENTS in zendesk.paths()[0]
