"""News RSS/Atom feeds (CoinDesk, Cointelegraph, Decrypt, CryptoSlate, NewsBTC, …).

Every URL of `OMC_NEWS_FEEDS` is fetched through the shared HTTP helper (retries, backoff,
Retry-After) and parsed with feedparser, which reads RSS 0.9x/1.0/2.0 and Atom alike. Each
feed is its own `source` (its URL without the scheme, e.g. `cointelegraph.com/rss`), each entry
is keyed by its `guid`/`id` (else its canonical link), so an entry repeated in a feed, or seen
again on the next poll, is stored once. Entries with the same canonical link inside one feed
are one item. Stories carried by several outlets (or by CryptoPanic) are linked through
`story_key` and counted once in the hourly aggregate.

Sentiment = VADER with the crypto lexicon over the title (70 %) and summary (30 %); coins =
tags of title and summary. The summary is the first non-empty one of the entry's
summary / description, its content (`content:encoded`, Atom `content`) — feeds such as
CoinDesk's put an empty `<dc:description/>` beside the real `<description>`, and feedparser
then files one of them as content. An entry without a title, or without any id or link, is
quarantined; one without a date takes the time it was first seen. A feed that cannot be
fetched or is not a feed (an HTML error page, truncated XML) is reported on the run (and its
body quarantined); the other feeds are still stored. Of a malformed feed (e.g. truncated
mid-item) only complete entries are kept — closed in the body, with link, id and date parsed —
the others are quarantined: a cut-off entry would otherwise be stored with a truncated URL as
its key and "now" as its date. Feeds ask for polite polling: the default
interval is 10 minutes and each feed is fetched once per run.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser
from sqlalchemy import Engine

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.http import HttpClient, HttpError, RequestFailed
from omc.core.time import utcnow
from omc.ledgers.collectors.base import Collected, Rejected
from omc.ledgers.collectors.registry import CollectorConfigError
from omc.ledgers.human.aggregate import HumanCollector
from omc.ledgers.human.coins import tag_coins
from omc.ledgers.human.sentiment import clean_text, score_item
from omc.ledgers.human.story import canonical_url

MAX_ID = 256
MAX_SUMMARY = 2000
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)


def feed_source(url: str) -> str:
    """The `source` name of a feed: its URL without scheme and `www.` (<= 64 chars)."""
    parts = urlsplit(url)
    host = parts.netloc.lower().removeprefix("www.")
    name = (host + parts.path.rstrip("/"))[:200]
    if len(name) <= 64:
        return name
    return host[:47] + "#" + hashlib.sha256(url.encode()).hexdigest()[:16]


def _entry_time(entry: Any) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(name)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def _summary(entry: Any) -> str | None:
    """The first non-empty summary, description or content of an entry."""
    candidates: list[Any] = [entry.get("summary"), entry.get("description")]
    detail = entry.get("summary_detail")
    if isinstance(detail, dict):
        candidates.append(detail.get("value"))
    content = entry.get("content")
    if isinstance(content, list):
        candidates += [c.get("value") for c in content if isinstance(c, dict)]
    for value in candidates:
        if isinstance(value, str) and clean_text(value):
            return value
    return None


def _plain(entry: Any) -> dict[str, Any]:
    """The JSON-safe part of an entry, kept as `raw` and quarantined when refused."""
    out: dict[str, Any] = {}
    for name in ("id", "title", "link", "published", "updated", "author"):
        value = entry.get(name)
        if isinstance(value, str):
            out[name] = value[:MAX_SUMMARY]
    summary = _summary(entry)
    if summary is not None:
        out["summary"] = summary[:MAX_SUMMARY]
    tags = entry.get("tags")
    if isinstance(tags, list):
        out["tags"] = [t.get("term") for t in tags if isinstance(t, dict) and t.get("term")]
    return out


def entry_row(entry: Any, source: str, seen_at: datetime) -> dict[str, Any] | str:
    """A `news_items` row from one feed entry, or why it cannot be stored."""
    raw = _plain(entry)
    title = clean_text(raw.get("title"))
    link = raw.get("link")
    canon = canonical_url(link)
    entry_id = (raw.get("id") or "").strip() or canon
    if not entry_id:
        return f"{source}: entry without id or link"
    if not title:
        return f"{source}: entry {entry_id[:100]} has no title"
    if len(entry_id) > MAX_ID:
        entry_id = "sha256:" + hashlib.sha256(entry_id.encode()).hexdigest()
    summary = clean_text(raw.get("summary"))[:MAX_SUMMARY] or None
    return {
        "source": source,
        "source_id": entry_id,
        "url": canon or link,
        "title": title,
        "summary": summary,
        "published_at": _entry_time(entry) or seen_at,
        "sentiment": round(score_item(title, summary), 6),
        "coins": tag_coins(title, summary),
        "story_key": None,
        "raw": raw,
    }


_CLOSED_ENTRY = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")


def incomplete_entry(entry: Any, index: int, closed: int) -> str | None:
    """Why entry `index` of a malformed feed (with `closed` closed entries) is not whole."""
    if index >= closed:
        return "entry cut off (not closed in the body)"
    missing = [
        name
        for name, ok in (
            ("link", bool((entry.get("link") or "").strip())),
            ("id", bool((entry.get("id") or "").strip())),
            ("date", _entry_time(entry) is not None),
        )
        if not ok
    ]
    return f"entry without {', '.join(missing)}" if missing else None


# Bozo warnings about labels, not content: the feed itself parsed fine.
BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


def parse_feed(body: bytes, url: str, content_type: str = "") -> tuple[Any, str | None]:
    """(parsed feed, problem): problem says why the body is unusable or damaged, else None."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers)
    version = parsed.get("version") or ""
    if not parsed.entries and (not version or parsed.bozo):
        exc = parsed.get("bozo_exception")
        detail = f" ({type(exc).__name__}: {exc})" if exc else ""
        return parsed, f"not an RSS/Atom feed{detail}"[:300]
    if parsed.bozo and not isinstance(parsed.get("bozo_exception"), BENIGN):
        exc = parsed.get("bozo_exception")
        return parsed, f"malformed feed ({type(exc).__name__}: {exc})"[:300]
    return parsed, None


class NewsFeedCollector(HumanCollector):
    """Every run: each configured feed once."""

    name = "news"

    def __init__(
        self,
        http: HttpClient,
        feeds: list[str],
        *,
        interval_s: float = 600.0,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(engine=engine, clock=clock)
        self.http = http
        self.feeds = feeds
        self.interval_s = interval_s

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> NewsFeedCollector:
        feeds = [f for f in settings.news_feeds if f.strip()]
        if not feeds:
            raise CollectorConfigError("news: OMC_NEWS_FEEDS is empty (comma-separated feed URLs)")
        bad = [f for f in feeds if urlsplit(f).scheme not in ("http", "https")]
        if bad:
            raise CollectorConfigError(f"news: not http(s) feed URLs in OMC_NEWS_FEEDS: {bad}")
        http = http_client(
            settings,
            "",
            "news",
            rate_per_s=None,
            headers={"Accept": ACCEPT},
            **kwargs.pop("http_kwargs", {}),
        )
        return cls(http, feeds, interval_s=settings.news_interval_s, **kwargs)

    def close(self) -> None:
        self.http.close()
        super().close()

    def collect(self) -> Collected:
        result = Collected()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        failed: list[str] = []
        seen_at = self.clock()
        for url in self.feeds:
            source = feed_source(url)
            try:
                response = self.http.get(url)
            except RequestFailed as exc:
                failed.append(url)
                result.errors.append(f"{source}: {exc}")
                continue
            parsed, problem = parse_feed(
                response.content, url, response.headers.get("content-type", "")
            )
            if problem:
                result.rejected.append(Rejected(f"{source}: {problem}", response.text))
                result.errors.append(f"{source}: {problem}")
                if not parsed.entries:
                    failed.append(url)
                    continue
            links: set[str] = set()
            closed = len(_CLOSED_ENTRY.findall(response.content)) if problem else 0
            for index, entry in enumerate(parsed.entries):
                result.fetched += 1
                damage = incomplete_entry(entry, index, closed) if problem else None
                if damage:
                    result.rejected.append(
                        Rejected(f"{source}: malformed feed: {damage}", _plain(entry))
                    )
                    continue
                row = entry_row(entry, source, seen_at)
                if isinstance(row, str):
                    result.rejected.append(Rejected(row, _plain(entry)))
                    continue
                key = (row["source"], row["source_id"])
                if key in rows or (row["url"] and row["url"] in links):
                    continue
                if row["url"]:
                    links.add(row["url"])
                rows[key] = row
        if len(failed) == len(self.feeds) and not result.rejected:
            raise HttpError("news: every feed failed: " + "; ".join(result.errors)[:1500], url="")
        return self.finish(result, news=list(rows.values()))
