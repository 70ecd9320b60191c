"""CoinSpot announcements: the Zendesk Help Center API of CoinSpot's help centre.

Two feeds are polled every `OMC_ANNOUNCEMENTS_INTERVAL_S` (20 s default, 5 s minimum):

* the Announcements category, `GET /api/v2/help_center/{locale}/categories/{id}/articles.json`
  with `sort_by=created_at&sort_order=desc` (newest first)
  — every article is kept; the next page — `next_page` (an absolute URL, offset paging) or,
  when the help centre answers with cursor pagination, `links.next` while `meta.has_more` —
  is followed while a whole page is new to OMC (first run: up to `max_pages`), so nothing
  between polls is missed. A next page already fetched in this walk (e.g. `next_page`
  pointing back to page 1), or a page repeating an earlier one's articles, ends the walk with
  a pagination-loop error on the run;
* the whole help centre, `GET /api/v2/help_center/{locale}/articles.json` newest first, first
  page only — an article outside the category is kept when it classifies as a catalyst
  (listing, delisting, halt, maintenance, feature), not when it is a general help article.

Requests are conditional: the ETag / Last-Modified of each feed's first page are stored in
`http_validators` (written in the same transaction as the articles, so a failed write can
never make OMC skip articles it did not store) and sent as If-None-Match / If-Modified-Since;
a `304 Not Modified` ends that feed's poll. Articles are deduplicated by id (across feeds
and across pages that shifted while paging). Each article is classified and its coins
extracted; an edited article (new `updated_at`) updates its `catalyst_events` row and adds a
`catalyst_event_revisions` row keyed by `updated_at`, never a second event. An article that
does not validate (no id, no title, bad dates) is quarantined; a page without `articles` is
quarantined whole.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import Engine, Table, select

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.http import HttpClient, HttpError, PayloadError, RequestFailed, decode_json
from omc.core.payloads import validation_summary
from omc.core.time import parse_utc, utcnow
from omc.ledgers.catalyst.classify import (
    ANNOUNCEMENT_IMPACT,
    classify_announcement,
    extract_coins,
    strip_html,
)
from omc.ledgers.collectors.base import Collected, Collector, PageTrail, Rejected, Rows
from omc.ledgers.models import CatalystEvent, CatalystEventRevision, HttpValidator

SOURCE = "announcements"
# An edit overwrites every column of the event (JSON ones included); the revision table
# keeps each version in full for point-in-time reads.
EVENT_COLUMNS = ("kind", "title", "url", "coins", "impact", "published_at", "payload")


class Article(BaseModel):
    """A Zendesk Help Center article (the fields OMC uses; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    title: str
    body: str | None = None
    html_url: str | None = None
    section_id: int | None = None
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None = None
    draft: bool = False
    locale: str | None = None
    label_names: list[str] = []

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty title")
        return value.strip()

    @field_validator("created_at", "updated_at", "edited_at", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        return parse_utc(str(value))


class Feed:
    """One polled article list: its first-page path, paging depth, and what it keeps."""

    def __init__(self, name: str, path: str, max_pages: int, keep_other: bool) -> None:
        self.name = name
        self.path = path
        self.max_pages = max_pages
        self.keep_other = keep_other


class AnnouncementsCollector(Collector):
    """Polls the help centre with conditional requests and stores classified articles."""

    name = SOURCE

    def __init__(
        self,
        http: HttpClient,
        *,
        locale: str = "en-us",
        category_id: str | None = None,
        interval_s: float = 20.0,
        per_page: int = 30,
        max_pages: int = 10,
        engine: Engine | None = None,
    ) -> None:
        self.http = http
        self.interval_s = interval_s
        self.engine = engine
        order = f"sort_by=created_at&sort_order=desc&per_page={per_page}"
        base = f"/api/v2/help_center/{locale}"
        self.feeds: list[Feed] = []
        if category_id:
            self.feeds.append(
                Feed(
                    "category",
                    f"{base}/categories/{category_id}/articles.json?{order}",
                    max_pages,
                    True,
                )
            )
        self.feeds.append(
            Feed("latest", f"{base}/articles.json?{order}", 1 if category_id else max_pages, False)
        )
        if not category_id:
            self.feeds[-1].keep_other = True
        self.validators: dict[str, tuple[str | None, str | None]] = {}  # memory fallback
        self.known: set[str] = set()  # memory fallback for "already stored" article ids

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> AnnouncementsCollector:
        http_kwargs = {k: kwargs.pop(k) for k in ("transport", "sleep", "clock") if k in kwargs}
        http = http_client(
            settings,
            settings.announcements_base_url,
            SOURCE,
            headers={"Accept": "application/json"},
            **http_kwargs,
        )
        return cls(
            http,
            locale=settings.announcements_locale,
            category_id=settings.announcements_category_id or None,
            interval_s=settings.announcements_interval_s,
            **kwargs,
        )

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------- stored state

    def _db(self) -> Engine | None:
        return self.engine

    def _validator(self, url: str) -> tuple[str | None, str | None]:
        db = self._db()
        if db is not None:
            table = cast(Table, HttpValidator.__table__)
            try:
                with db.connect() as conn:
                    row = conn.execute(
                        select(table.c.etag, table.c.last_modified).where(
                            table.c.source == SOURCE, table.c.url == url
                        )
                    ).first()
                return (row[0], row[1]) if row else (None, None)
            except Exception:  # no database yet: memory only
                pass
        return self.validators.get(url, (None, None))

    def _stored_ids(self, ids: list[str]) -> set[str]:
        db = self._db()
        if db is not None and ids:
            table = cast(Table, CatalystEvent.__table__)
            try:
                with db.connect() as conn:
                    rows = conn.execute(
                        select(table.c.event_id).where(
                            table.c.source == SOURCE, table.c.event_id.in_(ids)
                        )
                    )
                    return {r[0] for r in rows}
            except Exception:
                pass
        return self.known & set(ids)

    # ------------------------------------------------------------- fetching

    def _relative(self, url: str) -> str:
        """`next_page` is absolute; keep it on the configured host."""
        base = urlsplit(str(self.http.client.base_url))
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != base.netloc:
            raise PayloadError(f"next_page points to another host: {parts.netloc}", url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _page(self, path: str, conditional: bool) -> tuple[httpx.Response, dict[str, Any] | None]:
        headers: dict[str, str] = {}
        if conditional:
            etag, modified = self._validator(path)
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        response = self.http.get(path, headers=headers)
        if response.status_code == 304:
            return response, None
        body = decode_json(response)
        if not isinstance(body, dict) or not isinstance(body.get("articles"), list):
            raise PayloadError(f"{path}: `articles` list missing", json.dumps(body)[:100_000])
        return response, body

    def collect(self) -> Collected:
        result = Collected()
        events: dict[str, dict[str, Any]] = {}
        revisions: dict[tuple[str, datetime], dict[str, Any]] = {}
        validators: list[dict[str, Any]] = []
        failed = 0
        for feed in self.feeds:
            try:
                self._feed(feed, events, revisions, validators, result)
            except PayloadError as exc:
                failed += 1
                result.rejected.append(Rejected(f"{feed.name}: {exc.reason}", exc.raw))
                result.errors.append(f"{feed.name}: bad payload: {exc.reason}")
            except RequestFailed as exc:
                failed += 1
                result.errors.append(f"{feed.name}: {exc}")
        if failed == len(self.feeds) and not events and not result.rejected:
            raise HttpError("announcements: every feed failed: " + "; ".join(result.errors), url="")
        result.rows.append(
            Rows(cast(Table, CatalystEvent.__table__), list(events.values()), EVENT_COLUMNS)
        )
        result.rows.append(
            Rows(cast(Table, CatalystEventRevision.__table__), list(revisions.values()))
        )
        if validators:
            result.rows.append(
                Rows(
                    cast(Table, HttpValidator.__table__),
                    validators,
                    ("etag", "last_modified", "updated_at"),
                )
            )
        for url, etag, modified in ((v["url"], v["etag"], v["last_modified"]) for v in validators):
            self.validators[url] = (etag, modified)
        self.known.update(events)
        return result

    def _feed(
        self,
        feed: Feed,
        events: dict[str, dict[str, Any]],
        revisions: dict[tuple[str, datetime], dict[str, Any]],
        validators: list[dict[str, Any]],
        result: Collected,
    ) -> None:
        path: str | None = feed.path
        page = 0
        trail = PageTrail(feed.name)
        trail.seen(_page_key(feed.path))
        while path is not None and page < feed.max_pages:
            response, body = self._page(path, conditional=page == 0)
            if body is None:
                return  # 304: nothing changed since the stored validators
            if page == 0:
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
                if etag or modified:
                    validators.append(
                        {
                            "source": SOURCE,
                            "url": feed.path,
                            "etag": etag,
                            "last_modified": modified,
                            "updated_at": utcnow(),
                        }
                    )
            page += 1
            ids = []
            for raw in body["articles"]:
                result.fetched += 1
                try:
                    article = Article.model_validate(raw)
                except ValidationError as exc:
                    result.rejected.append(
                        Rejected(f"{feed.name} article: {validation_summary(exc)}", raw)
                    )
                    continue
                ids.append(str(article.id))
                if article.draft:
                    continue
                event = self._event(article)
                if event["kind"] == "other" and not feed.keep_other:
                    continue
                if event["event_id"] in events:
                    continue  # seen in another feed or on a shifted page
                events[event["event_id"]] = event
                key = (event["event_id"], article.updated_at)
                revisions[key] = {**event, "revision": article.updated_at}
            if trail.seen("articles:" + ",".join(ids)):
                result.errors.append(trail.loop(f"{page} (the same articles again)"))
                return
            next_page = _next_page(body)
            if not next_page or not ids or self._stored_ids(ids):
                return  # an article we already have: everything older is stored too
            path = self._relative(next_page)
            if trail.seen(_page_key(path)):
                result.errors.append(trail.loop(path))
                return

    @staticmethod
    def _event(article: Article) -> dict[str, Any]:
        body = article.body or ""
        kind = classify_announcement(article.title, body)
        return {
            "source": SOURCE,
            "event_id": str(article.id),
            "kind": kind,
            "title": article.title,
            "url": article.html_url,
            "coins": extract_coins(article.title, body) or None,
            "impact": ANNOUNCEMENT_IMPACT[kind],
            "published_at": article.created_at,
            "payload": {
                "article_id": article.id,
                "section_id": article.section_id,
                "updated_at": article.updated_at.isoformat(),
                "edited_at": article.edited_at.isoformat() if article.edited_at else None,
                "labels": article.label_names,
                "locale": article.locale,
                "excerpt": " ".join(strip_html(body).split())[:500],
            },
        }


def _next_page(body: dict[str, Any]) -> str | None:
    """The next page's URL: cursor pagination (`links.next` while `meta.has_more`), else the
    offset `next_page`."""
    meta, links = body.get("meta"), body.get("links")
    if isinstance(meta, dict) and isinstance(links, dict) and links.get("next"):
        return str(links["next"]) if meta.get("has_more") else None
    following = body.get("next_page")
    return str(following) if following else None


def _page_key(path: str) -> str:
    """A page's identity: path and sorted query, `page=1` when no page or cursor is named."""
    parts = urlsplit(path)
    query = dict(parse_qsl(parts.query))
    query.pop("page[size]", None)
    if not any(k == "page" or k.startswith("page[") for k in query):
        query["page"] = "1"
    return parts.path + "?" + urlencode(sorted(query.items()))
