"""CryptoPanic posts API: news posts with coin codes and crowd votes, scored and tagged.

`GET {OMC_CRYPTOPANIC_BASE_URL}/api/developer/v2/posts/?auth_token=…&public=true&kind=news
[&currencies=BTC,ETH][&filter=rising]` answers `{"count", "next", "previous", "results"}`.
`next` is an absolute URL of the following page (carrying the token again); it is followed
up to `cryptopanic_max_pages`, with the token stripped from it and sent as a parameter, and a
`next` already visited (a pagination loop) stops the walk with an error on the run.

Each post: `id`, `title`, `published_at` (else `created_at`), `url` (CryptoPanic's page),
`source.url` (the article itself, used for cross-outlet linking when present), coin codes in
`currencies` (v1) or `instruments` (v2) — either may be missing or null — and `votes`
(`positive`, `negative`, `important`, `liked`, `disliked`, `lol`, `toxic`, …; numbers or
numeric strings). Sentiment = VADER(title, description) blended with the vote balance; coins
= the API's codes plus the coins named in the title. Posts without a usable id, title or date
are quarantined with the reason; a post seen twice (across pages or runs) is stored once, and
a later run only updates its sentiment when the votes moved (the stored `raw` stays the
first one seen).
Rate limit: 1 request/s by default (free plans allow a handful per second and ~1000/day).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import Engine

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.http import HttpClient, PayloadError, RequestFailed
from omc.core.masking import Redactor, register_secrets
from omc.core.payloads import json_text, short_repr
from omc.core.time import parse_utc, utcnow
from omc.ledgers.collectors.base import Collected, Rejected
from omc.ledgers.collectors.registry import CollectorConfigError
from omc.ledgers.human.aggregate import HumanCollector
from omc.ledgers.human.coins import normalise_codes, tag_coins
from omc.ledgers.human.sentiment import blend_votes, clean_text, score_item

SOURCE = "cryptopanic"
POSTS_PATH = "/api/developer/v2/posts/"
DEFAULT_RATE_PER_S = 1.0


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, str) and value.strip():
        try:
            return parse_utc(value)
        except ValueError:
            return None
    return None


def post_row(item: Any) -> dict[str, Any] | str:
    """A `news_items` row from one post, or the reason it cannot be stored."""
    if not isinstance(item, dict):
        return f"post is not an object: {short_repr(item)}"
    raw_id = item.get("id")
    if isinstance(raw_id, bool) or raw_id is None or str(raw_id).strip() == "":
        return "post without id"
    post_id = str(raw_id).strip()
    if isinstance(raw_id, float) and raw_id.is_integer():
        post_id = str(int(raw_id))
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        return f"post {post_id}: missing title"
    published = parse_time(item.get("published_at")) or parse_time(item.get("created_at"))
    if published is None:
        shown = short_repr(item.get("published_at"))
        return f"post {post_id}: missing or invalid published_at {shown}"
    codes: list[Any] = []
    for field_name in ("currencies", "instruments"):
        entries = item.get(field_name)
        if isinstance(entries, list):
            codes.extend(e.get("code") for e in entries if isinstance(e, dict))
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    description = metadata.get("description") if isinstance(metadata, dict) else None
    if not isinstance(description, str):
        description = item.get("description") if isinstance(item.get("description"), str) else None
    source = item.get("source") if isinstance(item.get("source"), dict) else {}
    article_url = item.get("original_url") or (source or {}).get("url")
    url = article_url if isinstance(article_url, str) and article_url else item.get("url")
    votes = item.get("votes") if isinstance(item.get("votes"), dict) else None
    sentiment = blend_votes(score_item(title, description), votes)
    coins = normalise_codes([*codes, *tag_coins(title)])
    return {
        "source": SOURCE,
        "source_id": post_id,
        "url": url if isinstance(url, str) else None,
        "title": clean_text(title),
        "summary": clean_text(description) or None,
        "published_at": published,
        "sentiment": round(sentiment, 6),
        "coins": coins,
        "story_key": None,
        "raw": item,
    }


class CryptoPanicCollector(HumanCollector):
    """Every run: up to `max_pages` pages of posts, newest first."""

    name = SOURCE
    news_update = ("sentiment",)

    def __init__(
        self,
        http: HttpClient,
        token: str,
        *,
        currencies: list[str] | None = None,
        filter: str | None = None,
        kind: str = "news",
        max_pages: int = 5,
        interval_s: float = 300.0,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(engine=engine, clock=clock)
        self.http = http
        self.token = token
        self.currencies = [c.upper() for c in currencies or []]
        self.filter = filter
        self.kind = kind
        self.max_pages = max_pages
        self.interval_s = interval_s
        self.redactor = Redactor(token)
        register_secrets(token)  # the process-wide log filter: one pass a record

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> CryptoPanicCollector:
        token = settings.cryptopanic_token.get_secret_value() if settings.cryptopanic_token else ""
        if not token.strip():
            raise CollectorConfigError(
                "cryptopanic needs an API token: set OMC_CRYPTOPANIC_TOKEN "
                "(free at https://cryptopanic.com/developers/api/)"
            )
        rate = kwargs.pop("rate_per_s", DEFAULT_RATE_PER_S)
        http = http_client(
            settings,
            settings.cryptopanic_base_url,
            SOURCE,
            rate_per_s=rate,
            headers={"Accept": "application/json"},
            **kwargs.pop("http_kwargs", {}),
        )
        return cls(
            http,
            token.strip(),
            currencies=settings.cryptopanic_currencies,
            filter=settings.cryptopanic_filter,
            kind=settings.cryptopanic_kind,
            max_pages=settings.cryptopanic_max_pages,
            interval_s=settings.cryptopanic_interval_s,
            **kwargs,
        )

    def close(self) -> None:
        self.http.close()
        super().close()

    def first_params(self) -> dict[str, str]:
        params = {"public": "true", "kind": self.kind}
        if self.currencies:
            params["currencies"] = ",".join(self.currencies)
        if self.filter:
            params["filter"] = self.filter
        return params

    def _page(self, path: str, params: dict[str, str]) -> Any:
        try:
            return self.http.get_json(path, params={"auth_token": self.token, **params})
        except PayloadError as exc:
            raise self.redactor.payload_error(exc) from None
        except RequestFailed as exc:
            raise self.redactor.http_error(exc) from None

    def collect(self) -> Collected:
        result = Collected()
        rows: dict[str, dict[str, Any]] = {}
        path, params = POSTS_PATH, self.first_params()
        visited: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for page in range(1, self.max_pages + 1):
            visited.add((path, tuple(sorted(params.items()))))
            try:
                body = self._page(path, params)
                results = body.get("results") if isinstance(body, dict) else None
                if not isinstance(results, list):
                    raise PayloadError(
                        f"page {page}: no `results` list in the response",
                        self.redactor.payload(json_text(body)),
                    )
            except (RequestFailed, PayloadError) as exc:
                if page == 1:
                    raise
                self._page_failed(result, page, exc)
                break
            for item in results:
                result.fetched += 1
                row = post_row(item)
                if isinstance(row, str):
                    result.rejected.append(Rejected(row, self.redactor.payload(item)))
                elif row["source_id"] not in rows:
                    rows[row["source_id"]] = row
            following = body.get("next")
            if not following or not isinstance(following, str):
                break
            path, params = self._next(following)
            if (path, tuple(sorted(params.items()))) in visited:
                result.errors.append(f"pagination loop: page {page} points back to a seen page")
                break
        return self.finish(result, news=list(rows.values()))

    def _page_failed(self, result: Collected, page: int, exc: Exception) -> None:
        if isinstance(exc, PayloadError):
            result.rejected.append(Rejected(f"page {page}: {exc.reason}", exc.raw))
            result.errors.append(f"page {page}: bad payload: {exc.reason}")
        else:
            result.errors.append(f"page {page}: {exc}")

    def _next(self, url: str) -> tuple[str, dict[str, str]]:
        """`next` as (path, params) on the configured base URL, without the token."""
        parts = urlsplit(url)
        params = {k: v for k, v in parse_qsl(parts.query) if k != "auth_token"}
        if params.get("page") == "1":  # page 1 is the first request, which names no page
            del params["page"]
        return parts.path or POSTS_PATH, params
