"""Point-in-time reads of revised Human items: a later collection's votes or score never show
in a read as of before it (the collectors' real code against local fake servers, both
backends)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from alembic import command
from sqlalchemy import Engine, func, select

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.ledgers import pit
from omc.ledgers.human.cryptopanic import CryptoPanicCollector
from omc.ledgers.human.reddit import RedditCollector
from omc.ledgers.human.revisions import NEWS_REVISED, SOCIAL_REVISED
from omc.ledgers.models import NewsItem, NewsItemRevision, SocialPost, SocialPostRevision
from omc.migrations import alembic_config, upgrade
from tests import test_human_sources as human
from tests.fakes.cryptopanic_server import FakeCryptoPanic
from tests.fakes.reddit_server import FakeReddit
from tests.test_pit import T0, _news, _post

SOL = "13845001"  # the v2-shape post, 9 negative votes: collected again after a re-vote


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def cells(frame: pd.DataFrame) -> dict[tuple[str, datetime], tuple[int, float, float]]:
    return {
        (r.coin, r.hour.to_pydatetime()): (
            r.count,
            round(r.mean_sentiment, 5),
            round(r.weighted_sentiment, 5),
        )
        for r in frame.itertuples()
    }


def test_cryptopanic_revote_is_a_revision_as_of_the_collection(
    engine: Engine, cp: FakeCryptoPanic
) -> None:
    s = human.settings(cryptopanic_base_url=cp.url)
    assert human.run(engine, "cryptopanic", s).status == "ok"
    first_at = utcnow()
    first = pit.news(engine, as_of=first_at).set_index("source_id")
    stored_first = human.hourly(engine)
    assert count(engine, NewsItemRevision) == 15  # every item's first sighting
    post = next(p for p in cp.posts if str(p["id"]) == SOL)
    post["votes"] = {"positive": 40, "negative": 0, "important": 12, "liked": 9}
    assert human.run(engine, "cryptopanic", s).status == "ok"
    later = utcnow()
    assert count(engine, NewsItemRevision) == 16  # the re-voted item only

    revised = pit.news(engine, as_of=later).set_index("source_id")
    assert first.loc[SOL, "sentiment"] < -0.3 < revised.loc[SOL, "sentiment"]
    again = pit.news(engine, as_of=first_at).set_index("source_id")
    assert again["sentiment"].to_dict() == first["sentiment"].to_dict()
    assert again.loc[SOL, "collected_at"] == revised.loc[SOL, "collected_at"]  # first stored

    # the hourly aggregate as of the first collection is the one stored then
    assert cells(pit.sentiment_hourly(engine, as_of=first_at)) == stored_first
    now = pit.sentiment_hourly(engine, as_of=later)
    assert cells(now) == human.hourly(engine) != stored_first
    sol = now[now["coin"] == "SOL"].iloc[0]
    assert sol["known_at"] > pd.Timestamp(first_at)  # changed by the second collection

    summary = human.run(engine, "cryptopanic", s)  # the same votes again: nothing new
    assert (summary.inserted, summary.updated) == (0, 0)
    assert count(engine, NewsItemRevision) == 16


def test_reddit_rescore_is_a_revision_as_of_the_collection(engine: Engine, rd: FakeReddit) -> None:
    s = human.settings(
        reddit_base_url=rd.url, reddit_auth_base_url=rd.url, reddit_subreddits=["Bitcoin"]
    )
    assert human.run(engine, "reddit", s).status == "ok"
    first_at = utcnow()
    stored_first = human.hourly(engine)
    revisions = count(engine, SocialPostRevision)
    assert revisions == len(human.rows(engine, SocialPost))
    moon = rd.subreddits["Bitcoin"][0]
    rekt = rd.subreddits["Bitcoin"][1]
    moon["score"], moon["num_comments"] = 9, 1  # a collapsed score
    rekt["selftext"] = "Great recovery since, so bullish and happy now"  # edited: rescored
    assert human.run(engine, "reddit", s).status == "ok"
    later = utcnow()
    assert count(engine, SocialPostRevision) == revisions + 2

    before = pit.social(engine, as_of=first_at).set_index("post_id")
    after = pit.social(engine, as_of=later).set_index("post_id")
    assert tuple(before.loc["t3_gen000", ["score", "num_comments"]]) == (2500, 250)
    assert tuple(after.loc["t3_gen000", ["score", "num_comments"]]) == (9, 1)
    assert before.loc["t3_gen001", "sentiment"] < after.loc["t3_gen001", "sentiment"]

    assert cells(pit.sentiment_hourly(engine, as_of=first_at)) == stored_first
    assert cells(pit.sentiment_hourly(engine, as_of=later)) == human.hourly(engine) != stored_first

    summary = human.run(engine, "reddit", s)
    assert summary.inserted == 0 and count(engine, SocialPostRevision) == revisions + 2
    human.assert_aggregate_consistent(engine)


def test_overwritten_columns_all_have_revisions() -> None:
    assert set(CryptoPanicCollector.news_update) <= set(NEWS_REVISED.fields)
    assert set(RedditCollector.social_update) <= set(SOCIAL_REVISED.fields)


def test_upgrade_gives_stored_items_their_first_revision(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "0006")
    upsert(engine, NewsItem.__table__, [_news(1, T0, T0, sentiment=0.25)])
    upsert(engine, SocialPost.__table__, [_post(1, T0, T0, score=7)])
    upgrade(engine)
    with engine.connect() as conn:
        news = conn.execute(select(NEWS_REVISED.revisions)).one()
        post = conn.execute(select(SOCIAL_REVISED.revisions)).one()
    assert (news.collected_at, news.sentiment) == (T0, 0.25)
    assert (post.collected_at, post.score) == (T0, 7)
