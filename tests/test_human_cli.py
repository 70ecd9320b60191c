"""`python -m omc collect --once cryptopanic|reddit|news` as a subprocess against local servers.

Configuration comes only from `OMC_*` environment variables, as in production; secrets must
not appear in the command output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from omc.core.db import make_engine
from omc.ledgers.models import NewsItem, SentimentHourly, SocialPost
from tests.fakes.cryptopanic_server import TOKEN, FakeCryptoPanic
from tests.fakes.reddit_server import CLIENT_ID, CLIENT_SECRET, FakeReddit
from tests.fakes.rss_server import FakeFeeds


@pytest.fixture
def servers() -> Iterator[tuple[FakeCryptoPanic, FakeReddit, FakeFeeds]]:
    cp, rd, feeds = FakeCryptoPanic(), FakeReddit(), FakeFeeds()
    for server in (cp, rd, feeds):
        server.start()
    try:
        yield cp, rd, feeds
    finally:
        for server in (cp, rd, feeds):
            server.stop()


def test_collect_once_each_human_source(
    db_url: str, servers: tuple[FakeCryptoPanic, FakeReddit, FakeFeeds]
) -> None:
    cp, rd, feeds = servers
    env = {
        **os.environ,
        "OMC_DATABASE_URL": db_url,
        "OMC_HTTP_BACKOFF_BASE_S": "0.01",
        "OMC_HTTP_TIMEOUT_S": "0.5",
        "OMC_NEWS_FEEDS": f"{feeds.feed_url('cointelegraph')},{feeds.feed_url('decrypt')}",
        "OMC_CRYPTOPANIC_BASE_URL": cp.url,
        "OMC_CRYPTOPANIC_TOKEN": TOKEN,
        "OMC_CRYPTOPANIC_MAX_PAGES": "5",
        "OMC_REDDIT_BASE_URL": rd.url,
        "OMC_REDDIT_AUTH_BASE_URL": rd.url,
        "OMC_REDDIT_CLIENT_ID": CLIENT_ID,
        "OMC_REDDIT_CLIENT_SECRET": CLIENT_SECRET,
        "OMC_REDDIT_SUBREDDITS": "Bitcoin",
        "OMC_LOG_LEVEL": "DEBUG",
    }
    for source in ("news", "cryptopanic", "reddit"):
        done = subprocess.run(
            [sys.executable, "-m", "omc", "collect", "--once", source],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert f"{source}: ok" in output
        assert TOKEN not in output and CLIENT_SECRET not in output
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            news = conn.execute(select(func.count()).select_from(NewsItem.__table__)).scalar()
            social = conn.execute(select(func.count()).select_from(SocialPost.__table__)).scalar()
            hourly = conn.execute(
                select(func.count()).select_from(SentimentHourly.__table__)
            ).scalar()
    finally:
        engine.dispose()
    assert news == 8 + 2 + 15 and social == 7 + 3 * 3 and hourly
    env["OMC_CRYPTOPANIC_TOKEN"] = ""
    done = subprocess.run(
        [sys.executable, "-m", "omc", "collect", "--once", "cryptopanic"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "OMC_CRYPTOPANIC_TOKEN" in done.stdout + done.stderr
