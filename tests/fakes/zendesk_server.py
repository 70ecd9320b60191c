"""A fake Zendesk Help Center (CoinSpot's help centre) on 127.0.0.1, with a fault queue.

Real paths, query parameters and body shapes (the article objects follow the real capture
`tests/data/api/zendesk_articles.json`):

* `GET /api/v2/help_center/{locale}/articles.json` — every article;
* `GET /api/v2/help_center/{locale}/categories/{id}/articles.json` — articles of the
  sections of that category (the Announcements category is `ANNOUNCEMENTS`);
* query `sort_by` (`created_at`, `updated_at`, `position`), `sort_order`, `per_page`, `page`;
  the body carries `articles`, `count`, `page`, `page_count`, `per_page`, `next_page` /
  `previous_page` as absolute URLs, `sort_by`, `sort_order`;
* conditional requests: every 200 carries `ETag` (a hash of the body) and `Last-Modified`
  (the newest `updated_at` listed); a matching `If-None-Match` (or, without one, an
  `If-Modified-Since` not older than Last-Modified) answers `304 Not Modified`, empty.

`publish(...)` adds an article now (or at `created_at`), `edit(id, ...)` changes one and
bumps `updated_at`. Data faults (`spoil`): `drift` (articles renamed `items`),
`bad_article` (the first article loses its `id`), `string_ids` (ids as strings, as some
proxies re-encode them), `extra_fields`. `loop_next` makes every `next_page` point back to
page 1; `cursor` answers with cursor pagination (`meta.has_more`, `links.next` carrying
`page[after]`) instead of offset pages.
"""

from __future__ import annotations

import copy
import email.utils
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.fakes.notify_server import FakeHttpServer, Fault, Reply, Request, running

DATA = Path(__file__).resolve().parent.parent / "data" / "api"
ANNOUNCEMENTS = "115000579994"
ANNOUNCEMENT_SECTION = 115001000001
HELP_SECTION = 115001000002


def zformat(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk(FakeHttpServer):
    """Articles in memory; sections map to categories."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.template: dict[str, Any] = json.loads((DATA / "zendesk_articles.json").read_text())[
            "articles"
        ][0]
        self.articles: dict[int, dict[str, Any]] = {}
        self.sections = {ANNOUNCEMENT_SECTION: ANNOUNCEMENTS, HELP_SECTION: "115000000000"}
        self.next_id = 360000000000
        self.loop_next = False  # every `next_page` points back to page 1 (a paging loop)
        self.cursor = False  # answer with cursor pagination (`meta.has_more`, `links.next`)
        self.data_lock = threading.Lock()
        self.published: dict[int, float] = {}  # article id -> monotonic time of publication

    def publish(
        self,
        title: str,
        body: str = "",
        *,
        section_id: int = ANNOUNCEMENT_SECTION,
        created_at: datetime | None = None,
    ) -> int:
        import time

        when = created_at or self.clock()
        with self.data_lock:
            self.next_id += 1
            article_id = self.next_id
            article = copy.deepcopy(self.template)
            slug = "-".join(title.split())[:60]
            base = self.url
            article.update(
                {
                    "id": article_id,
                    "url": f"{base}/api/v2/help_center/en-us/articles/{article_id}.json",
                    "html_url": f"{base}/hc/en-us/articles/{article_id}-{slug}",
                    "section_id": section_id,
                    "title": title,
                    "name": title,
                    "body": body,
                    "created_at": zformat(when),
                    "updated_at": zformat(when),
                    "edited_at": zformat(when),
                }
            )
            self.articles[article_id] = article
            self.published[article_id] = time.monotonic()
        return article_id

    def edit(self, article_id: int, *, at: datetime | None = None, **changes: Any) -> None:
        when = at or self.clock()
        with self.data_lock:
            article = self.articles[article_id]
            article.update(changes)
            if "title" in changes:
                article["name"] = changes["title"]
            article["updated_at"] = zformat(when)
            article["edited_at"] = zformat(when)

    def route(self, request: Request) -> Reply:
        parts = urlsplit(request.path)
        segments = [s for s in parts.path.split("/") if s]
        if segments[:3] != ["api", "v2", "help_center"] or len(segments) < 5:
            return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})
        rest = segments[4:]
        with self.data_lock:
            articles = [copy.deepcopy(a) for a in self.articles.values()]
        if rest == ["articles.json"]:
            pass
        elif len(rest) == 3 and rest[0] == "categories" and rest[2] == "articles.json":
            if rest[1] not in self.sections.values():
                return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
            articles = [a for a in articles if self.sections.get(a["section_id"]) == rest[1]]
        else:
            return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        sort_by = query.get("sort_by", "position")
        descending = query.get("sort_order", "asc") == "desc"
        key = sort_by if sort_by in ("created_at", "updated_at", "title") else "id"
        articles.sort(key=lambda a: (a[key], a["id"]), reverse=descending)
        per_page = max(1, min(100, int(query.get("per_page", "30"))))
        page = max(1, int(query.get("page", "1")))
        count = len(articles)
        page_count = max(1, -(-count // per_page))
        chunk = articles[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str | None:
            if number < 1 or number > page_count:
                return None
            if self.loop_next:
                number = 1
            return f"{self.url}{parts.path}?{urlencode({**query, 'page': number})}"

        if self.cursor:  # cursor pagination: `page[after]` is the offset, as an opaque text
            after = int(query.get("page[after]", "c0")[1:])
            chunk = articles[after : after + per_page]
            more = after + per_page < count
            next_query = {**query, "page[after]": f"c{after + per_page}"}
            cursor_body: dict[str, Any] = {
                "articles": chunk,
                "meta": {
                    "has_more": more,
                    "after_cursor": f"c{after + per_page}" if more else None,
                    "before_cursor": f"c{after}",
                },
                "links": {
                    "first": f"{self.url}{parts.path}",
                    "next": f"{self.url}{parts.path}?{urlencode(next_query)}" if more else None,
                    "prev": None,
                },
            }
            return Reply(200, cursor_body)
        body = {
            "articles": chunk,
            "count": count,
            "next_page": link(page + 1),
            "page": page,
            "page_count": page_count,
            "per_page": per_page,
            "previous_page": link(page - 1),
            "sort_by": sort_by,
            "sort_order": "desc" if descending else "asc",
        }
        etag = 'W/"' + hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest() + '"'
        newest = max((a["updated_at"] for a in chunk), default="2000-01-01T00:00:00Z")
        modified_dt = datetime.strptime(newest, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        modified = email.utils.format_datetime(modified_dt, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified, "Cache-Control": "max-age=0"}
        if_none_match = request.headers.get("if-none-match")
        since = request.headers.get("if-modified-since")
        if if_none_match is not None:
            if if_none_match == etag:
                return Reply(304, None, headers=headers)
        elif since:
            try:
                if email.utils.parsedate_to_datetime(since) >= modified_dt:
                    return Reply(304, None, headers=headers)
            except (TypeError, ValueError):
                pass
        return Reply(200, body, headers=headers)

    def spoil(self, body: Any, fault: Fault) -> Any:
        if not isinstance(body, dict):
            return body
        if fault.kind == "drift":
            body["items"] = body.pop("articles")
        elif fault.kind == "bad_article" and body.get("articles"):
            body["articles"][0].pop("id", None)
        elif fault.kind == "string_ids":
            for article in body.get("articles", []):
                article["id"] = str(article["id"])
                article["section_id"] = str(article["section_id"])
        elif fault.kind == "extra_fields":
            body["meta"] = {"has_more": False}
            for article in body.get("articles", []):
                article["content_tag_ids"] = ["x"]
                article["new_field"] = {"nested": True}
        return body


def seed(server: FakeZendesk, now: datetime, listings: int = 2, other: int = 3) -> list[int]:
    """Some history: listings, a delisting, maintenance and a help article (oldest first)."""
    ids = []
    titles = [
        ("Scheduled maintenance: Ethereum network upgrade", "<p>Deposits paused.</p>"),
        ("Delisting of Terra Classic (LUNC)", "<p>LUNC will be removed on 1 May.</p>"),
        ("How do I verify my identity?", "<p>Upload an ID.</p>"),
    ][:other]
    titles += [
        (f"New Listing: Coin{i} (CN{i}X)", f"<p>CN{i}X/AUD is now available.</p>")
        for i in range(listings)
    ]
    for i, (title, body) in enumerate(titles):
        section = HELP_SECTION if title.startswith("How do") else ANNOUNCEMENT_SECTION
        ids.append(
            server.publish(
                title, body, section_id=section, created_at=now - timedelta(hours=len(titles) - i)
            )
        )
    return ids


def running_zendesk() -> Iterator[FakeZendesk]:
    yield from running(FakeZendesk())


@pytest.fixture
def zendesk_server() -> Iterator[FakeZendesk]:
    yield from running_zendesk()
