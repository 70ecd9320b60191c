"""News feeds: damaged feeds store only whole entries, and summaries are never silently empty
(both backends, against the local feed server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from omc.ledgers.models import NewsItem
from tests.fakes.rss_server import FakeFeeds, running
from tests.test_human_sources import NOW, hourly, quarantine, rows, run, settings

RSS = "application/rss+xml; charset=utf-8"
OLD = "Mon, 05 Jan 2026 09:00:00 +0000"  # months before NOW


@pytest.fixture
def feeds() -> Iterator[FakeFeeds]:
    yield from running(FakeFeeds())


def rss(items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Feed</title><link>https://news.example</link>{channel}{items}"
    ).encode()


def item(n: int, title: str, date: str = "Sat, 10 Oct 2026 11:00:00 +0000") -> str:
    return (
        f"<item><title>{title}</title><link>https://news.example/{n}/story</link>"
        f'<guid isPermaLink="false">n-{n}</guid><pubDate>{date}</pubDate>'
        f"<description>Story {n}.</description></item>"
    )


COMPLETE = item(1, "Ethereum upgrade ships on time") + item(2, "Dogecoin steady after rally")


@pytest.mark.parametrize(
    "cut",
    [
        # cut inside the link: no guid, no date were parsed
        "<item><title>Bitcoin crashes as exchange collapses, traders rekt</title>"
        "<link>https://news.example/2026/01/bitcoin-cra",
        # Cointelegraph's element order: date and guid parsed, the link cut
        f"<item><title>Bitcoin crashes as exchange collapses, traders rekt</title>"
        f'<pubDate>{OLD}</pubDate><guid isPermaLink="false">n-3</guid>'
        "<link>https://news.example/2026/01/bitcoin-cra",
    ],
    ids=["cut-in-link", "cut-after-guid"],
)
def test_a_truncated_feed_keeps_only_complete_entries(
    engine: Engine, feeds: FakeFeeds, cut: str
) -> None:
    feeds.feeds["broken"] = (rss(COMPLETE + cut), RSS)
    summary = run(engine, "news", settings(news_feeds=[feeds.feed_url("broken")]))
    assert summary.status == "partial"
    stored = rows(engine, NewsItem)
    assert sorted(r.source_id for r in stored) == ["n-1", "n-2"]
    assert all(r.published_at != NOW for r in stored)
    reasons = [q.reason for q in quarantine(engine)]
    assert any("malformed feed" in r and "entry" in r for r in reasons), reasons
    hour = datetime(2026, 10, 10, 13, tzinfo=UTC)
    assert ("BTC", hour) not in hourly(engine)  # the old crash is not "now" news


def test_the_first_non_empty_description_is_the_summary(engine: Engine, feeds: FakeFeeds) -> None:
    items = (
        # CoinDesk: an empty <dc:description/> beside the real <description>
        "<item><title>Bitcoin ETF flows</title><link>https://news.example/a</link>"
        '<guid isPermaLink="false">a</guid><pubDate>Sat, 10 Oct 2026 11:00:00 +0000</pubDate>'
        "<dc:description/><description><![CDATA[<p>Record inflows into spot ETFs.</p>]]>"
        "</description></item>"
        "<item><title>Solana fees</title><link>https://news.example/b</link>"
        '<guid isPermaLink="false">b</guid><pubDate>Sat, 10 Oct 2026 11:00:00 +0000</pubDate>'
        "<description>Fees fell sharply.</description><dc:description/></item>"
        "<item><title>Ether staking</title><link>https://news.example/c</link>"
        '<guid isPermaLink="false">c</guid><pubDate>Sat, 10 Oct 2026 11:00:00 +0000</pubDate>'
        "<description></description><content:encoded><![CDATA[<p>Staking hits a high.</p>]]>"
        "</content:encoded></item>"
    )
    feeds.feeds["coindesk"] = (rss(items) + b"</channel></rss>", RSS)
    summary = run(engine, "news", settings(news_feeds=[feeds.feed_url("coindesk")]))
    assert summary.status == "ok", summary.error
    summaries = {r.source_id: r.summary for r in rows(engine, NewsItem)}
    assert summaries == {
        "a": "Record inflows into spot ETFs.",
        "b": "Fees fell sharply.",
        "c": "Staking hits a high.",
    }
