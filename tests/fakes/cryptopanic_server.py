"""A fake CryptoPanic posts API on 127.0.0.1 (real path, auth, body and pagination).

`GET /api/developer/v2/posts/?auth_token=…[&currencies=BTC,ETH][&filter=…][&kind=…][&page=N]`
answers `{"count", "next", "previous", "results"}` with `page_size` posts per page. The posts
are the twelve real 2022 results (`tests/data/api/cryptopanic_posts_results_2022.json`) plus
`extra` posts: one in the v2 shape (`instruments` instead of `currencies`), one without
either, one whose `source.url` is a real Cointelegraph article (the same story as the feed).
`next` is absolute and repeats the token, as the real API does. A wrong or missing token
answers 401 `{"status": "Incomplete", "info": "Token not found"}`.
`loop=True` makes the last page's `next` point back to page 1; `repeat_across_pages=True`
repeats the last post of each page at the top of the next one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from tests.fakes.rss_server import DATA, Answer, FakeServer, Request, running

POSTS_PATH = "/api/developer/v2/posts/"
TOKEN = "cp-test-token-5f1e9a7c"


def real_posts() -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = json.loads(
        (DATA / "cryptopanic_posts_results_2022.json").read_text()
    )
    return posts


def extra_posts() -> list[dict[str, Any]]:
    v2 = {
        "id": 13845001,
        "kind": "news",
        "title": "Solana Network Suffers Another Outage, Blocks Halted",
        "published_at": "2022-01-02T13:10:00Z",
        "created_at": "2022-01-02T13:10:00Z",
        "url": "https://cryptopanic.com/news/13845001/Solana-outage",
        "original_url": "https://decrypt.co/solana-outage",
        "instruments": [{"code": "SOL", "title": "Solana", "slug": "solana"}],
        "votes": {"negative": 9, "positive": 1, "important": 2, "liked": 0, "disliked": 3,
                  "lol": 0, "toxic": 1, "saved": 0, "comments": 0},
    }  # fmt: skip
    bare = {
        "id": 13845002,
        "kind": "news",
        "title": "Ethereum Gas Fees Drop to Two-Year Low as Layer 2 Activity Soars",
        "published_at": "2022-01-02T13:20:00Z",
        "url": "https://cryptopanic.com/news/13845002/eth-gas",
        "votes": {"positive": "4", "negative": "0"},
    }
    same_story = {
        "id": 13845003,
        "kind": "news",
        "title": "Tron's Justin Sun: Post-Quantum Cryptography Live on Testnet",
        "published_at": "2026-10-10T11:58:00Z",
        "url": "https://cryptopanic.com/news/13845003/tron-pq",
        "source": {
            "title": "Cointelegraph",
            "domain": "cointelegraph.com",
            "url": "https://cointelegraph.com/news/justin-sun-says-trons-post-quantum-cryptography"
            "-has-gone-live-on-testnet?utm_source=cryptopanic",
        },
        "currencies": None,
        "votes": {"positive": 2, "negative": 0, "important": 1},
    }
    return [v2, bare, same_story]


class FakeCryptoPanic(FakeServer):
    def __init__(self, page_size: int = 5) -> None:
        super().__init__()
        self.token = TOKEN
        self.posts = real_posts() + extra_posts()
        self.page_size = page_size
        self.loop = False
        self.repeat_across_pages = False

    def pages(self) -> int:
        return max(1, -(-len(self.posts) // self.page_size))

    def route(self, request: Request) -> Answer:
        if request.path != POSTS_PATH:
            return Answer(404, {"detail": "Not found."})
        if request.query.get("auth_token") != self.token:
            return Answer(401, {"status": "Incomplete", "info": "Token not found"})
        with self.lock:
            posts = copy.deepcopy(self.posts)
        codes = {c for c in request.query.get("currencies", "").upper().split(",") if c}
        if codes:
            posts = [
                p
                for p in posts
                if codes
                & {c.get("code") for c in (p.get("currencies") or p.get("instruments") or [])}
            ]
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            return Answer(400, {"detail": "Invalid page."})
        start = (page - 1) * self.page_size
        results = posts[start : start + self.page_size]
        if self.repeat_across_pages and page > 1 and start - 1 < len(posts):
            results = [posts[start - 1], *results]
        last = start + self.page_size >= len(posts)
        query = {k: v for k, v in request.query.items() if k != "page"}
        following: str | None = None
        if not last:
            following = f"{self.url}{POSTS_PATH}?{urlencode({**query, 'page': page + 1})}"
        elif self.loop:
            following = f"{self.url}{POSTS_PATH}?{urlencode({**query, 'page': 1})}"
        previous = (
            f"{self.url}{POSTS_PATH}?{urlencode({**query, 'page': page - 1})}" if page > 1 else None
        )
        return Answer(
            200, {"count": len(posts), "next": following, "previous": previous, "results": results}
        )


def running_cryptopanic(**kwargs: Any) -> Iterator[FakeCryptoPanic]:
    yield from running(FakeCryptoPanic(**kwargs))
