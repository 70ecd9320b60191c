"""CryptoPanic, Reddit and news feeds end to end against faulty local servers (both backends).

Outcome per source: zero good items lost, zero duplicates, every bad item quarantined with its
reason, health reported and recovered, secrets never stored or logged, the hourly aggregate
consistent with a full rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from omc.core.config import Settings
from omc.ledgers import pit
from omc.ledgers.collectors.base import CollectorRunner, RunSummary
from omc.ledgers.collectors.registry import CollectorConfigError, build
from omc.ledgers.human.aggregate import HOURLY, rebuild_sentiment_hourly
from omc.ledgers.models import CollectorRun, NewsItem, QuarantinedItem, SocialPost
from omc.ledgers.status import collector_health
from tests.fakes.cryptopanic_server import TOKEN, FakeCryptoPanic
from tests.fakes.reddit_server import CLIENT_SECRET, FakeReddit
from tests.fakes.rss_server import FakeFeeds, Fault, running

NOW = datetime(2026, 10, 10, 13, 0, tzinfo=UTC)


@pytest.fixture
def feeds() -> Iterator[FakeFeeds]:
    yield from running(FakeFeeds())


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "http_timeout_s": 0.3,
        "http_max_retries": 2,
        "http_backoff_base_s": 0.01,
        "http_backoff_max_s": 0.05,
        "cryptopanic_token": TOKEN,
        "reddit_client_id": "omc-test-client",
        "reddit_client_secret": CLIENT_SECRET,
        "reddit_subreddits": ["CryptoCurrency", "Bitcoin"],
        "reddit_comment_score_threshold": 500,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def run(engine: Engine, name: str, s: Settings) -> RunSummary:
    module = {"cryptopanic": "cryptopanic", "reddit": "reddit", "news": "news"}[name]
    from importlib import import_module

    cls = {
        "cryptopanic": "CryptoPanicCollector",
        "reddit": "RedditCollector",
        "news": "NewsFeedCollector",
    }[name]
    kwargs: dict[str, Any] = {"engine": engine, "clock": lambda: NOW}
    if name != "news":
        kwargs["rate_per_s"] = 1000.0
    collector = getattr(import_module(f"omc.ledgers.human.{module}"), cls).from_settings(
        s, **kwargs
    )
    try:
        return CollectorRunner(engine).run(collector)
    finally:
        collector.close()


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(model.__table__)).all())


def quarantine(engine: Engine) -> list[Any]:
    return rows(engine, QuarantinedItem)


def hourly(engine: Engine) -> dict[tuple[str, datetime], tuple[int, float, float]]:
    with engine.connect() as conn:
        return {
            (r.coin, r.hour): (r.count, round(r.mean_sentiment, 5), round(r.weighted_sentiment, 5))
            for r in conn.execute(select(HOURLY))
        }


def assert_aggregate_consistent(engine: Engine) -> None:
    before = hourly(engine)
    assert before
    rebuild_sentiment_hourly(
        engine, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )
    assert hourly(engine) == before
    # the point-in-time read is the same implementation: it answers the stored table
    live = pit.sentiment_hourly(engine, as_of=datetime(2100, 1, 1, tzinfo=UTC))
    answered = {
        (r.coin, r.hour.to_pydatetime()): (
            r.count,
            round(r.mean_sentiment, 5),
            round(r.weighted_sentiment, 5),
        )
        for r in live.itertuples()
    }
    assert answered == before


def everything_stored(engine: Engine) -> str:
    parts = [
        repr(r)
        for model in (NewsItem, SocialPost, QuarantinedItem, CollectorRun)
        for r in rows(engine, model)
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- CryptoPanic


def test_cryptopanic_pages_scores_tags_and_dedupes(engine: Engine, cp: FakeCryptoPanic) -> None:
    s = settings(
        cryptopanic_base_url=cp.url,
        cryptopanic_filter="rising",
        cryptopanic_currencies=["btc", "eth"],
    )
    cp.posts = cp.posts  # all 15 posts; the currencies filter is checked on the request
    summary = run(engine, "cryptopanic", s.model_copy(update={"cryptopanic_currencies": []}))
    assert summary.status == "ok", summary.error
    stored = {r.source_id: r for r in rows(engine, NewsItem)}
    assert len(stored) == len(cp.posts) == 15 and summary.fetched == 15
    first = cp.requests[0]
    assert first.path == "/api/developer/v2/posts/" and first.query["auth_token"] == TOKEN
    assert first.query["public"] == "true" and first.query["kind"] == "news"
    assert [r.query.get("page") for r in cp.requests] == [None, "2", "3"]
    sol = stored["13845001"]  # v2 shape: instruments; negative votes pull the score down
    assert sol.coins == ["SOL"] and sol.sentiment < -0.3
    assert stored["13845002"].coins == ["ETH"]  # no currencies at all, tagged from the title
    assert stored["13844554"].url.startswith("https://zycrypto.com/")
    assert all(-1 <= r.sentiment <= 1 and r.story_key for r in stored.values())
    again = run(engine, "cryptopanic", s.model_copy(update={"cryptopanic_currencies": []}))
    assert (again.inserted, again.updated) == (0, 0) and len(rows(engine, NewsItem)) == 15
    assert_aggregate_consistent(engine)
    run(engine, "cryptopanic", s)
    assert (
        cp.requests[-1].query["currencies"] == "BTC,ETH"
        and cp.requests[-1].query["filter"] == "rising"
    )


def test_cryptopanic_faults_drift_loops_and_secret(
    engine: Engine, cp: FakeCryptoPanic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s = settings(cryptopanic_base_url=cp.url, http_max_retries=3)
    path = "/api/developer/v2/posts/"

    def drift(body: dict[str, Any]) -> dict[str, Any]:
        body["server_time"] = "now"  # extra field
        r = body["results"]
        r[0]["id"] = str(r[0]["id"])  # number as string
        r[1]["votes"] = {"positive": "7", "negative": None}
        r[2]["currencies"] = None
        r[3]["title"] = None  # bad: quarantined
        r[4]["published_at"] = "not a date"
        r[4]["created_at"] = None  # bad: quarantined
        r[0]["extra"] = {"x": 1}
        return body

    cp.repeat_across_pages = True
    cp.loop = True
    cp.inject(
        Fault("reset", path),
        Fault("http", path, status=502),
        Fault("rate_limited", path, retry_after="0.01"),
        Fault("mutate", path, mutate=drift),
        Fault("http", path, status=503),
        Fault("delay", path, seconds=0.5),
    )
    summary = run(engine, "cryptopanic", s)
    assert summary.status == "partial"
    assert "pagination loop" in (summary.error or "")
    reasons = sorted(q.reason for q in quarantine(engine))
    assert len(reasons) == 2
    assert any("missing title" in r for r in reasons) and any("published_at" in r for r in reasons)
    # 15 - 2 bad + 1: the spoiled last post of page 1 comes again, intact, atop page 2
    assert len(rows(engine, NewsItem)) == 14
    assert cp.pending() == []
    # truncated JSON and an HTML page on page 1: failed run, body quarantined, then recovery
    cp.inject(Fault("truncated", path))
    bad = run(engine, "cryptopanic", s)
    assert bad.status == "failed" and "invalid JSON" in (bad.error or "")
    cp.inject(Fault("html", path, status=200))
    assert run(engine, "cryptopanic", s).status == "failed"
    health = {h["collector"]: h for h in collector_health(engine, s)}
    assert health["cryptopanic"]["state"] == "failing"
    cp.loop = False
    assert run(engine, "cryptopanic", s).status == "ok"
    assert {h["collector"]: h for h in collector_health(engine, s)}["cryptopanic"][
        "state"
    ] == "fresh"
    # the token is in every `next` URL and the truncated body: never stored, never logged
    assert TOKEN not in everything_stored(engine)
    assert any("***" in q.payload for q in quarantine(engine))
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def test_cryptopanic_page_two_failure_keeps_page_one(engine: Engine, cp: FakeCryptoPanic) -> None:
    s = settings(cryptopanic_base_url=cp.url, http_max_retries=0)
    cp.inject(Fault("http", "/api/developer/v2/posts/", status=500))  # consumed by page 1
    assert run(engine, "cryptopanic", s).status == "failed"
    cp.requests.clear()
    summary = run(engine, "cryptopanic", s)  # healthy
    assert summary.status == "ok"
    cp2_fault = Fault("truncated", "/api/developer/v2/posts/")
    cp.page_size = 10
    cp.posts.append({**cp.posts[0], "id": 99999999, "title": "Bitcoin hits new all-time high"})
    cp.inject(Fault("mutate", "/api/developer/v2/posts/", mutate=lambda b: b), cp2_fault)
    partial = run(engine, "cryptopanic", s)
    assert partial.status == "partial" and "page 2" in (partial.error or "")


def test_cryptopanic_bad_token_and_config(engine: Engine, cp: FakeCryptoPanic) -> None:
    with pytest.raises(CollectorConfigError, match="OMC_CRYPTOPANIC_TOKEN"):
        build("cryptopanic", settings(cryptopanic_token=None))
    wrong = "wrong-token-1234"
    summary = run(
        engine, "cryptopanic", settings(cryptopanic_base_url=cp.url, cryptopanic_token=wrong)
    )
    assert summary.status == "failed" and "401" in (summary.error or "")
    assert wrong not in everything_stored(engine)


# ---------------------------------------------------------------- Reddit


def test_reddit_oauth_listings_comments(engine: Engine, rd: FakeReddit) -> None:
    s = settings(
        reddit_base_url=rd.url, reddit_auth_base_url=rd.url, reddit_max_comment_fetches=100
    )
    summary = run(engine, "reddit", s)
    assert summary.status == "ok", summary.error
    token_calls = [r for r in rd.requests if r.path == "/api/v1/access_token"]
    assert len(token_calls) == 1 and token_calls[0].method == "POST"
    assert token_calls[0].body == b"grant_type=client_credentials"
    hot = [r for r in rd.requests if r.path.endswith("/hot")]
    assert [r.query.get("after") for r in hot if "CryptoCurrency" in r.path] == [
        None,
        "t3_1skgoxq",
        "t3_1sk5h27",
    ] or len(hot) == 4
    assert all(r.headers["authorization"].startswith("bearer ") for r in hot)
    assert all("oh-my-coins" in r.headers["user-agent"] for r in hot)
    stored = {r.post_id: r for r in rows(engine, SocialPost)}
    posts = [r for r in stored.values() if r.parent_id is None]
    comments = [r for r in stored.values() if r.parent_id]
    assert len(posts) == 27  # 20 real + 7 generated
    big = [
        p for p in rd.subreddits["CryptoCurrency"] + rd.subreddits["Bitcoin"] if p["score"] >= 500
    ]
    assert len(comments) == 3 * len(big)
    moon = stored["t3_gen000"]
    assert moon.coins == ["BTC"] and moon.sentiment > 0.1 and moon.published_at.tzinfo
    assert stored["t3_gen001"].sentiment < -0.3
    comment = next(c for c in comments if c.parent_id == "t3_gen000")
    assert comment.coins == ["BTC"]  # inherited from the post
    again = run(engine, "reddit", s)
    assert again.inserted == 0 and len(rows(engine, SocialPost)) == len(stored)
    assert len([r for r in rd.requests if r.path == "/api/v1/access_token"]) == 2  # new collector
    assert_aggregate_consistent(engine)


def test_reddit_comment_fetches_per_run_are_capped_highest_scores_first(
    engine: Engine, rd: FakeReddit
) -> None:
    s = settings(
        reddit_base_url=rd.url,
        reddit_auth_base_url=rd.url,
        reddit_comment_score_threshold=0,  # every post qualifies
        reddit_max_comment_fetches=3,
    )
    summary = run(engine, "reddit", s)
    assert summary.status == "ok", summary.error
    fetched = [r.path for r in rd.requests if "/comments/" in r.path]
    assert len(fetched) == 3
    posts = rd.subreddits["CryptoCurrency"] + rd.subreddits["Bitcoin"]
    top = sorted(posts, key=lambda p: p["score"], reverse=True)[:3]
    assert sorted(p.rsplit("/", 1)[-1] for p in fetched) == sorted(p["id"] for p in top)


def test_reddit_expired_token_refreshes_once(engine: Engine, rd: FakeReddit) -> None:
    from omc.ledgers.human.reddit import RedditCollector

    s = settings(reddit_base_url=rd.url, reddit_auth_base_url=rd.url, reddit_subreddits=["Bitcoin"])
    collector = RedditCollector.from_settings(s, engine=engine, rate_per_s=1000.0)
    try:
        runner = CollectorRunner(engine)
        assert runner.run(collector).status == "ok"
        assert collector.auth.fetches == 1
        assert runner.run(collector).status == "ok"
        assert collector.auth.fetches == 1  # cached until expiry
        rd.expire_tokens()
        assert runner.run(collector).status == "ok"
        assert collector.auth.fetches == 2  # 401 -> one refresh -> retry
        collector.auth.expires_at = 0  # expired by the clock: refreshed before the call
        assert runner.run(collector).status == "ok" and collector.auth.fetches == 3
        rd.client_secret = "rotated"
        rd.expire_tokens()
        failed = runner.run(collector)
        assert failed.status == "failed" and "token" in (failed.error or "")
    finally:
        collector.close()
    assert CLIENT_SECRET not in everything_stored(engine)


def test_reddit_faults_drift_and_loops(
    engine: Engine, rd: FakeReddit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s = settings(reddit_base_url=rd.url, reddit_auth_base_url=rd.url)

    def drift(body: dict[str, Any]) -> dict[str, Any]:
        children = body["data"]["children"]
        children[0]["data"]["score"] = str(children[0]["data"]["score"])
        children[1]["data"]["created_utc"] = str(children[1]["data"]["created_utc"])
        children[2]["data"]["selftext"] = None
        children[3]["data"].pop("num_comments")
        children[4]["data"]["id"] = None  # bad
        children[5]["data"]["created_utc"] = None  # bad
        children[6]["data"]["brand_new_field"] = [1, 2]
        return body

    rd.loop_after = True
    rd.inject(
        Fault("reset", "/r/Bitcoin/hot"),
        Fault("http", "/r/Bitcoin/hot", status=500),
        Fault("mutate", "/r/Bitcoin/hot", mutate=drift),
        Fault("rate_limited", "/r/CryptoCurrency/hot", retry_after="0.01"),
        Fault("truncated", "/r/Bitcoin/comments/"),
    )
    summary = run(engine, "reddit", s)
    assert summary.status == "partial"
    assert "pagination loop" in (summary.error or "")
    reasons = sorted(q.reason for q in quarantine(engine))
    assert any("without id" in r for r in reasons) and any("created_utc" in r for r in reasons)
    assert any("invalid JSON" in r for r in reasons)  # the truncated comments body
    ids = {r.post_id for r in rows(engine, SocialPost) if r.parent_id is None}
    # the looped page brings the two spoiled posts again, intact: stored once; the spoiled
    # copies stay in the quarantine
    assert len(ids) == 27
    rd.inject(Fault("html", "/r/", status=502), Fault("html", "/r/", status=502),
              Fault("html", "/r/", status=502), Fault("html", "/r/", status=502),
              Fault("html", "/r/", status=502), Fault("html", "/r/", status=502))  # fmt: skip
    assert run(engine, "reddit", s).status == "failed"
    assert {h["collector"]: h for h in collector_health(engine, s)}["reddit"]["state"] == "failing"
    rd.loop_after = False
    assert run(engine, "reddit", s).status == "ok"
    assert {h["collector"]: h for h in collector_health(engine, s)}["reddit"]["state"] == "fresh"
    assert len({r.post_id for r in rows(engine, SocialPost) if r.parent_id is None}) == 27
    assert CLIENT_SECRET not in everything_stored(engine)
    assert all(CLIENT_SECRET not in r.getMessage() for r in caplog.records)


def test_reddit_config_errors() -> None:
    with pytest.raises(CollectorConfigError, match="OMC_REDDIT_CLIENT_SECRET"):
        build("reddit", settings(reddit_client_secret=None))
    with pytest.raises(CollectorConfigError, match="OMC_REDDIT_CLIENT_ID"):
        build("reddit", settings(reddit_client_id=None))


# ---------------------------------------------------------------- news feeds


def test_news_feeds_parse_dedupe_and_link_stories(
    engine: Engine, feeds: FakeFeeds, cp: FakeCryptoPanic
) -> None:
    names = ["cointelegraph", "coindesk", "decrypt"]
    s = settings(news_feeds=[feeds.feed_url(n) for n in names], cryptopanic_base_url=cp.url)
    summary = run(engine, "news", s)
    assert summary.status == "partial"  # the untitled coindesk entry is quarantined
    (bad,) = quarantine(engine)
    assert "has no title" in bad.reason
    stored = rows(engine, NewsItem)
    assert len(stored) == 8 + 3 + 2  # coindesk's repeated entry stored once
    by_title = {r.title: r for r in stored}
    assert by_title["Bitcoin Surges Past $70,000 as ETF Inflows Hit Record"].coins == ["BTC"]
    no_date = by_title["Solana Network Suffers Outage as Validators Halt Blocks"]
    assert no_date.published_at == NOW and no_date.sentiment < 0
    cointelegraph = next(
        r for r in stored if r.source.startswith("127.0.0.1") and "justin-sun" in (r.url or "")
    )
    coindesk = next(r for r in stored if r.source_id == "cd-2")
    assert cointelegraph.story_key == coindesk.story_key  # re-titled copy, same story
    assert all(r.url is None or "utm_" not in r.url for r in stored)
    # CryptoPanic carries the same Cointelegraph article: linked too, counted once
    run(engine, "cryptopanic", s)
    cp_item = next(r for r in rows(engine, NewsItem) if r.source_id == "13845003")
    assert cp_item.story_key == cointelegraph.story_key
    hour = datetime(2026, 10, 10, 11, tzinfo=UTC)
    count, _mean, _weighted = hourly(engine)[("TRX", hour)]
    assert count == 1  # three outlets, one story
    assert_aggregate_consistent(engine)
    again = run(engine, "news", s)
    assert (
        again.inserted == 0
        and len([r for r in rows(engine, NewsItem) if r.source != "cryptopanic"]) == 13
    )


def test_news_faults_and_recovery(engine: Engine, feeds: FakeFeeds) -> None:
    s = settings(
        news_feeds=[feeds.feed_url("cointelegraph"), feeds.feed_url("decrypt")], http_max_retries=1
    )
    feeds.inject(
        Fault("http", "/cointelegraph", status=503, retry_after="0.01"),
        Fault("html", "/cointelegraph", status=200),  # a 200 HTML page: not a feed
        Fault("truncated", "/decrypt"),
    )
    summary = run(engine, "news", s)
    # an HTML page and half a feed whose only parsed entry is cut off: nothing stored
    assert summary.status == "failed" and summary.inserted == 0
    reasons = [q.reason for q in quarantine(engine)]
    assert any("not an RSS/Atom feed" in r for r in reasons)
    assert any(
        "malformed feed" in r or "not an RSS/Atom feed" in r for r in reasons if "decrypt" in r
    )
    feeds.inject(*(Fault("reset", "/") for _ in range(4)))
    assert run(engine, "news", s).status == "failed"
    assert {h["collector"]: h for h in collector_health(engine, s)}["news"]["state"] == "failing"
    assert run(engine, "news", s).status == "ok"
    assert {h["collector"]: h for h in collector_health(engine, s)}["news"]["state"] == "fresh"
    assert len(rows(engine, NewsItem)) == 10  # nothing good lost, nothing twice


def test_news_config_errors() -> None:
    with pytest.raises(CollectorConfigError, match="OMC_NEWS_FEEDS"):
        build("news", settings(news_feeds=[]))
    with pytest.raises(CollectorConfigError, match="http"):
        build("news", settings(news_feeds=["ftp://x/feed"]))


def test_aggregate_counts_units_and_weights(engine: Engine, rd: FakeReddit) -> None:
    s = settings(reddit_base_url=rd.url, reddit_auth_base_url=rd.url, reddit_subreddits=["Bitcoin"])
    run(engine, "reddit", s)
    with engine.connect() as conn:
        total = conn.execute(
            select(func.sum(HOURLY.c["count"])).where(HOURLY.c.coin == "BTC")
        ).scalar()
    btc_items = [r for r in rows(engine, SocialPost) if "BTC" in (r.coins or [])]
    assert total == len(btc_items)
    for count, mean, weighted in hourly(engine).values():
        assert count >= 1 and -1 <= mean <= 1 and -1 <= weighted <= 1
