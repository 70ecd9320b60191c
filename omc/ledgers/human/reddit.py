"""Reddit: hot posts of configured subreddits and the top comments of the big ones.

Auth is OAuth2 application-only ("client credentials"): `POST {OMC_REDDIT_AUTH_BASE_URL}
/api/v1/access_token` with HTTP basic auth (client id : secret) and the form body
`grant_type=client_credentials` answers `{"access_token", "token_type": "bearer",
"expires_in": 86400, "scope"}` (or HTTP 200 `{"error": …}` / 401 for bad credentials). The token
is cached until 60 s before it expires; an API call answered 401 (token revoked or expired
early) fetches a new token once and retries once.

API calls go to `{OMC_REDDIT_BASE_URL}` (oauth.reddit.com) with `Authorization: bearer …` and
a descriptive User-Agent: `GET /r/{sub}/hot?limit=100&raw_json=1[&after=t3_…]` returns a
Listing (`data.children[].data`, `data.after` for the next page; followed up to
`reddit_max_pages`, stopping on a repeated cursor). Posts scoring at least
`reddit_comment_score_threshold` get `GET /r/{sub}/comments/{id}?sort=top&limit=10&depth=1`
(a two-Listing array: the post, then its comments; `kind: more` stubs are skipped) — at most
`reddit_max_comment_fetches` per run, the highest-scoring posts of all subreddits first.

Rows go to `social_posts` (`platform` reddit, `post_id` the fullname `t3_…` / `t1_…`,
comments carry `parent_id`); score and comment count update on later runs. A post or comment
without an id or creation time, or whose fields are unusable, is quarantined with the reason.
Comments inherit their post's coins when they name none. Rate limit: Reddit allows 100
requests per minute per client id; the default here is 1.5 requests/s, and the
`X-Ratelimit-Remaining` / `X-Ratelimit-Reset` headers are honoured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.http import HttpClient, HttpError, PayloadError, RequestFailed, decode_json
from omc.core.masking import Redactor, register_secrets
from omc.core.payloads import json_text, short_repr
from omc.core.time import from_epoch_s, utcnow
from omc.ledgers.collectors.base import Collected, Rejected
from omc.ledgers.collectors.registry import CollectorConfigError
from omc.ledgers.human.aggregate import HumanCollector
from omc.ledgers.human.coins import tag_coins
from omc.ledgers.human.sentiment import clean_text, score_item

PLATFORM = "reddit"
TOKEN_PATH = "/api/v1/access_token"
DEFAULT_RATE_PER_S = 1.5
PAGE_LIMIT = 100
COMMENT_LIMIT = 10
TOKEN_MARGIN_S = 60.0


class RedditAuthError(HttpError):
    """The token endpoint refused the credentials (never carries them)."""


class RedditAuth:
    """Application-only OAuth token, cached until shortly before it expires."""

    def __init__(
        self,
        http: HttpClient,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.token: str | None = None
        self.expires_at = 0.0
        self.fetches = 0

    def get(self) -> str:
        if self.token is None or self.clock() >= self.expires_at:
            self.refresh()
        assert self.token is not None
        return self.token

    def invalidate(self) -> None:
        self.token = None

    def refresh(self) -> None:
        self.fetches += 1
        try:
            response = self.http.request(
                "POST",
                TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
            )
        except RequestFailed as exc:
            raise RedditAuthError(
                f"reddit: token request failed: {exc}", url=exc.url, status=exc.status
            ) from None
        payload = decode_json(response)
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            error = payload.get("error") if isinstance(payload, dict) else None
            raise RedditAuthError(
                f"reddit: token endpoint gave no access_token (error: {error or 'none'})",
                url=TOKEN_PATH,
                status=response.status_code,
            )
        try:
            expires_in = float(payload.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        self.token = token
        self.expires_at = self.clock() + max(0.0, expires_in - TOKEN_MARGIN_S)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _created(data: dict[str, Any]) -> datetime | None:
    for name in ("created_utc", "created"):
        value = data.get(name)
        if value is None or isinstance(value, bool):
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if 0 < seconds < 1e11:
            return from_epoch_s(seconds)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def post_row(child: Any, subreddit: str) -> dict[str, Any] | str:
    """A `social_posts` row from one Listing child (`t3` post), or why it cannot be stored."""
    data = child.get("data") if isinstance(child, dict) else None
    if not isinstance(data, dict):
        return f"r/{subreddit}: listing child without data: {short_repr(child)}"
    post_id = data.get("id")
    if not isinstance(post_id, str) or not post_id.strip():
        return f"r/{subreddit}: post without id"
    created = _created(data)
    if created is None:
        bad = short_repr(data.get("created_utc"))
        return f"r/{subreddit} {post_id}: missing or invalid created_utc {bad}"
    title = _text(data.get("title"))
    if title is None:
        return f"r/{subreddit} {post_id}: missing title"
    body = _text(data.get("selftext"))
    permalink = _text(data.get("permalink"))
    return {
        "platform": PLATFORM,
        "post_id": f"t3_{post_id.strip()}",
        "parent_id": None,
        "community": _text(data.get("subreddit")) or subreddit,
        "author": _text(data.get("author")),
        "title": title,
        "body": body,
        "url": _text(data.get("url"))
        or (f"https://www.reddit.com{permalink}" if permalink else None),
        "score": _int(data.get("score")),
        "num_comments": _int(data.get("num_comments")),
        "published_at": created,
        "sentiment": round(score_item(title, body), 6),
        "coins": tag_coins(title, clean_text(body)[:2000]),
        "raw": data,
    }


def comment_row(child: Any, post: dict[str, Any]) -> dict[str, Any] | str | None:
    """A `social_posts` row from a `t1` comment; None for `more` stubs; else the reason."""
    if isinstance(child, dict) and child.get("kind") == "more":
        return None
    data = child.get("data") if isinstance(child, dict) else None
    if not isinstance(data, dict):
        return f"{post['post_id']}: comment without data: {short_repr(child)}"
    comment_id = data.get("id")
    if not isinstance(comment_id, str) or not comment_id.strip():
        return f"{post['post_id']}: comment without id"
    created = _created(data)
    if created is None:
        return f"{post['post_id']} comment {comment_id}: missing or invalid created_utc"
    body = _text(data.get("body"))
    if body is None or body in ("[deleted]", "[removed]"):
        return f"{post['post_id']} comment {comment_id}: no body"
    permalink = _text(data.get("permalink"))
    return {
        "platform": PLATFORM,
        "post_id": f"t1_{comment_id.strip()}",
        "parent_id": post["post_id"],
        "community": post["community"],
        "author": _text(data.get("author")),
        "title": None,
        "body": body,
        "url": f"https://www.reddit.com{permalink}" if permalink else None,
        "score": _int(data.get("score")),
        "num_comments": None,
        "published_at": created,
        "sentiment": round(score_item(None, body), 6),
        "coins": tag_coins(clean_text(body)[:2000]) or list(post["coins"]),
        "raw": data,
    }


class RedditCollector(HumanCollector):
    """Every run: hot listings of each subreddit, plus top comments of high-scoring posts."""

    name = PLATFORM
    social_update = ("score", "num_comments", "sentiment")

    def __init__(
        self,
        api: HttpClient,
        auth: RedditAuth,
        *,
        subreddits: list[str],
        comment_score_threshold: int = 500,
        max_pages: int = 3,
        max_comment_fetches: int = 20,
        interval_s: float = 300.0,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(engine=engine, clock=clock)
        self.api = api
        self.auth = auth
        self.subreddits = subreddits
        self.comment_score_threshold = comment_score_threshold
        self.max_pages = max_pages
        self.max_comment_fetches = max_comment_fetches
        self.interval_s = interval_s
        self.sleep = sleep
        self.redactor = Redactor(auth.client_secret)
        register_secrets(auth.client_secret)  # the process-wide log filter: one pass a record

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> RedditCollector:
        secret = (
            settings.reddit_client_secret.get_secret_value()
            if settings.reddit_client_secret
            else ""
        )
        missing = [
            name
            for name, value in (
                ("OMC_REDDIT_CLIENT_ID", settings.reddit_client_id),
                ("OMC_REDDIT_CLIENT_SECRET", secret),
            )
            if not (value or "").strip()
        ]
        if missing:
            raise CollectorConfigError(
                f"reddit needs {' and '.join(missing)} (an app at https://www.reddit.com/prefs/apps)"
            )
        if not settings.reddit_subreddits:
            raise CollectorConfigError("reddit: OMC_REDDIT_SUBREDDITS is empty")
        rate = kwargs.pop("rate_per_s", DEFAULT_RATE_PER_S)
        http_kwargs = kwargs.pop("http_kwargs", {})
        headers = {"User-Agent": settings.reddit_user_agent, "Accept": "application/json"}
        api = http_client(
            settings,
            settings.reddit_base_url,
            PLATFORM,
            rate_per_s=rate,
            headers=headers,
            **http_kwargs,
        )
        auth_http = http_client(
            settings,
            settings.reddit_auth_base_url,
            PLATFORM,
            rate_per_s=rate,
            headers=headers,
            **http_kwargs,
        )
        auth = RedditAuth(auth_http, str(settings.reddit_client_id).strip(), secret.strip())
        return cls(
            api,
            auth,
            subreddits=settings.reddit_subreddits,
            comment_score_threshold=settings.reddit_comment_score_threshold,
            max_pages=settings.reddit_max_pages,
            max_comment_fetches=settings.reddit_max_comment_fetches,
            interval_s=settings.reddit_interval_s,
            **kwargs,
        )

    def close(self) -> None:
        self.api.close()
        self.auth.http.close()
        super().close()

    # ---------------------------------------------------------------- HTTP

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        """GET with the bearer token; a 401 refreshes the token once and retries once."""
        try:
            for attempt in (0, 1):
                headers = {"Authorization": f"bearer {self.auth.get()}"}
                try:
                    response = self.api.get(path, params=params, headers=headers)
                except RequestFailed as exc:
                    if exc.status == 401 and attempt == 0:
                        self.auth.invalidate()
                        continue
                    raise
                self._respect_rate_headers(response)
                return decode_json(response)
            raise AssertionError("unreachable")  # pragma: no cover
        except PayloadError as exc:
            raise self.redactor.payload_error(exc) from None
        except RequestFailed as exc:
            raise self.redactor.http_error(exc) from None

    def _respect_rate_headers(self, response: httpx.Response) -> None:
        try:
            remaining = float(response.headers.get("x-ratelimit-remaining", "inf"))
            reset = float(response.headers.get("x-ratelimit-reset", "0"))
        except ValueError:
            return
        if remaining < 1 and reset > 0:
            self.sleep(min(reset, 60.0))

    # ---------------------------------------------------------------- collection

    def collect(self) -> Collected:
        result = Collected()
        rows: dict[str, dict[str, Any]] = {}
        failures = 0
        candidates: list[tuple[str, dict[str, Any]]] = []  # (subreddit, post) worth comments
        for subreddit in self.subreddits:
            try:
                candidates += self._subreddit(subreddit, result, rows)
            except RedditAuthError:
                raise  # no token: stop (an unreachable host is no HttpError: it stops the run too)
            except HttpError as exc:
                if exc.status == 401:
                    raise
                failures += 1
                result.errors.append(f"r/{subreddit}: {exc}")
            except PayloadError as exc:
                failures += 1
                result.rejected.append(Rejected(f"r/{subreddit}: {exc.reason}", exc.raw))
                result.errors.append(f"r/{subreddit}: bad payload: {exc.reason}")
        if failures == len(self.subreddits) and not rows:
            summary = "; ".join(result.errors)[:1500]
            if result.rejected:  # the runner quarantines the raw bodies with the reason
                raw = "\n\n".join(str(r.payload) for r in result.rejected)
                raise PayloadError(f"every subreddit failed: {summary}", raw)
            raise HttpError(f"reddit: every subreddit failed: {summary}", url="/r/")
        candidates.sort(key=lambda c: c[1]["score"] or 0, reverse=True)
        for subreddit, post in candidates[: self.max_comment_fetches]:
            self._comments(subreddit, post, result, rows)
        return self.finish(result, social=list(rows.values()))

    def _listing(self, body: Any, what: str) -> tuple[list[Any], str | None]:
        data = body.get("data") if isinstance(body, dict) else None
        children = data.get("children") if isinstance(data, dict) else None
        if not isinstance(children, list):
            raise PayloadError(f"{what}: not a Listing", json_text(body))
        after = data.get("after") if isinstance(data, dict) else None
        return children, after if isinstance(after, str) and after else None

    def _subreddit(
        self, subreddit: str, result: Collected, rows: dict[str, dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Store the hot posts; return those scoring enough for their comments."""
        after: str | None = None
        seen_cursors: set[str] = set()
        posts: list[dict[str, Any]] = []
        for page in range(1, self.max_pages + 1):
            params: dict[str, Any] = {"limit": PAGE_LIMIT, "raw_json": 1}
            if after:
                params["after"] = after
            try:
                body = self._get(f"/r/{subreddit}/hot", params)
                children, after = self._listing(body, f"r/{subreddit} hot page {page}")
            except (RequestFailed, PayloadError) as exc:
                if page == 1:
                    raise
                if isinstance(exc, PayloadError):
                    result.rejected.append(
                        Rejected(f"r/{subreddit} page {page}: {exc.reason}", exc.raw)
                    )
                result.errors.append(f"r/{subreddit} page {page}: {exc}")
                break
            for child in children:
                if isinstance(child, dict) and child.get("kind") not in (None, "t3"):
                    continue
                result.fetched += 1
                row = post_row(child, subreddit)
                if isinstance(row, str):
                    result.rejected.append(Rejected(row, child))
                elif row["post_id"] not in rows:
                    rows[row["post_id"]] = row
                    posts.append(row)
            if after is None:
                break
            if after in seen_cursors:
                result.errors.append(f"r/{subreddit}: pagination loop at cursor {after}")
                break
            seen_cursors.add(after)
        return [
            (subreddit, post)
            for post in posts
            if (post["score"] or 0) >= self.comment_score_threshold
        ]

    def _comments(
        self,
        subreddit: str,
        post: dict[str, Any],
        result: Collected,
        rows: dict[str, dict[str, Any]],
    ) -> None:
        short_id = post["post_id"][3:]
        what = f"r/{subreddit} comments of {post['post_id']}"
        try:
            body = self._get(
                f"/r/{subreddit}/comments/{short_id}",
                {"sort": "top", "limit": COMMENT_LIMIT, "depth": 1, "raw_json": 1},
            )
            if not isinstance(body, list) or len(body) < 2:
                raise PayloadError(f"{what}: expected [post, comments] listings", json_text(body))
            children, _ = self._listing(body[1], what)
        except PayloadError as exc:
            result.rejected.append(Rejected(exc.reason, exc.raw))
            result.errors.append(f"{what}: bad payload")
            return
        except HttpError as exc:
            if exc.status == 401:
                raise
            result.errors.append(f"{what}: {exc}")
            return
        for child in children[:COMMENT_LIMIT]:
            row = comment_row(child, post)
            if row is None:
                continue
            result.fetched += 1
            if isinstance(row, str):
                result.rejected.append(Rejected(row, child))
            elif row["post_id"] not in rows:
                rows[row["post_id"]] = row
