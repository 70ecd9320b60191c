"""A fake Reddit (token endpoint + OAuth API) on 127.0.0.1: real paths, auth and Listings.

* `POST /api/v1/access_token` — HTTP basic auth `client_id:secret`, form body
  `grant_type=client_credentials`; answers `{"access_token", "token_type": "bearer",
  "expires_in", "scope": "*"}` or 401 `{"message": "Unauthorized", "error": 401}`.
* `GET /r/{sub}/hot?limit=&after=` — a Listing (`kind: Listing`, `data.children[]` of
  `{kind: t3, data}`, `data.after` = fullname of the page's last post, null on the last page),
  `page_size` posts per page. `CryptoCurrency` serves the 20 real posts of
  `tests/data/api/reddit_hot_listing.json`; `Bitcoin` serves generated crypto posts.
* `GET /r/{sub}/comments/{id}?sort=top&limit=` — `[post Listing, comments Listing]` with
  three `t1` comments and a `more` stub.

Every API call needs `Authorization: bearer <a live token>`; `expire_tokens()` revokes the
live ones (the next call gets 401, as an expired token does). `loop_after` makes the last
page's `after` point back to an earlier page.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.rss_server import DATA, Answer, FakeServer, Request, running

CLIENT_ID = "omc-test-client"
CLIENT_SECRET = "reddit-secret-9c2b77e1"


def real_posts() -> list[dict[str, Any]]:
    listing = json.loads((DATA / "reddit_hot_listing.json").read_text())
    return [child["data"] for child in listing["data"]["children"]]


GENERATED_TITLES = [
    ("Bitcoin just broke $100K, we are going to the moon", 2500),
    ("Got rekt on my ETH long, liquidated at the bottom", 800),
    ("Daily discussion thread", 40),
    ("Is this a rug pull? New Solana memecoin drained", 150),
    ("Lightning Network capacity hits a new record", 600),
    ("Why I keep stacking sats every week", 90),
    ("XRP and Cardano holders are bullish again", 300),
]


def generated_posts(subreddit: str = "Bitcoin") -> list[dict[str, Any]]:
    posts = []
    for i, (title, score) in enumerate(GENERATED_TITLES):
        post_id = f"gen{i:03d}"
        posts.append(
            {
                "id": post_id,
                "name": f"t3_{post_id}",
                "subreddit": subreddit,
                "title": title,
                "selftext": "" if i % 2 else f"{title}. Thoughts?",
                "author": f"user{i}",
                "score": score,
                "num_comments": score // 10,
                "created_utc": 1776105848.0 + 60 * i,
                "permalink": f"/r/{subreddit}/comments/{post_id}/slug/",
                "url": f"https://www.reddit.com/r/{subreddit}/comments/{post_id}/slug/",
                "stickied": i == 2,
            }
        )
    return posts


def comments_for(post: dict[str, Any]) -> list[dict[str, Any]]:
    bodies = ["This is amazing, so bullish", "Terrible news, I'm selling everything", "Source?"]
    children: list[dict[str, Any]] = [
        {
            "kind": "t1",
            "data": {
                "id": f"{post['id']}c{i}",
                "name": f"t1_{post['id']}c{i}",
                "parent_id": f"t3_{post['id']}",
                "body": body,
                "author": f"commenter{i}",
                "score": 100 - 10 * i,
                "created_utc": float(post["created_utc"]) + 300 + i,
                "permalink": f"{post['permalink']}{post['id']}c{i}/",
            },
        }
        for i, body in enumerate(bodies)
    ]
    children.append({"kind": "more", "data": {"count": 42, "children": ["x1", "x2"]}})
    return children


class FakeReddit(FakeServer):
    def __init__(self, page_size: int = 8) -> None:
        super().__init__()
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.page_size = page_size
        self.expires_in: Any = 86400
        self.loop_after = False
        self.subreddits: dict[str, list[dict[str, Any]]] = {
            "CryptoCurrency": real_posts(),
            "Bitcoin": generated_posts(),
        }
        self.live_tokens: set[str] = set()
        self.issued = 0
        self.token_lock = threading.Lock()

    def expire_tokens(self) -> None:
        with self.token_lock:
            self.live_tokens.clear()

    def route(self, request: Request) -> Answer:
        if request.path == "/api/v1/access_token":
            return self._token(request)
        auth = request.headers.get("authorization", "")
        with self.token_lock:
            live = auth.lower().startswith("bearer ") and auth[7:] in self.live_tokens
        if not live:
            return Answer(401, {"message": "Unauthorized", "error": 401})
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 3 and parts[0] == "r" and parts[2] == "hot":
            return self._hot(parts[1], request)
        if len(parts) >= 4 and parts[0] == "r" and parts[2] == "comments":
            return self._comments(parts[1], parts[3])
        return Answer(404, {"message": "Not Found", "error": 404})

    def _token(self, request: Request) -> Answer:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = dict(parse_qsl(request.body.decode()))
        if request.method != "POST" or request.headers.get("authorization") != f"Basic {expected}":
            return Answer(401, {"message": "Unauthorized", "error": 401})
        if form.get("grant_type") != "client_credentials":
            return Answer(200, {"error": "unsupported_grant_type"})
        with self.token_lock:
            self.issued += 1
            token = f"fake-bearer-{self.issued}"
            self.live_tokens.add(token)
        return Answer(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "scope": "*",
            },
        )

    def _hot(self, subreddit: str, request: Request) -> Answer:
        with self.lock:
            posts = copy.deepcopy(self.subreddits.get(subreddit))
        if posts is None:
            return Answer(404, {"message": "Not Found", "error": 404, "reason": "banned"})
        after = request.query.get("after")
        start = 0
        if after:
            names = [f"t3_{p.get('id')}" for p in posts]
            start = names.index(after) + 1 if after in names else len(posts)
        page = posts[start : start + self.page_size]
        end = start + self.page_size >= len(posts)
        next_after: str | None = None if end or not page else f"t3_{page[-1]['id']}"
        if end and self.loop_after and page:
            next_after = f"t3_{posts[0]['id']}"
        return Answer(
            200,
            {
                "kind": "Listing",
                "data": {
                    "after": next_after,
                    "dist": len(page),
                    "modhash": "",
                    "geo_filter": None,
                    "children": [{"kind": "t3", "data": p} for p in page],
                    "before": None,
                },
            },
        )

    def _comments(self, subreddit: str, post_id: str) -> Answer:
        posts = self.subreddits.get(subreddit) or []
        post = next((p for p in posts if p.get("id") == post_id), None)
        if post is None:
            return Answer(404, {"message": "Not Found", "error": 404})
        listing = {
            "kind": "Listing",
            "data": {"after": None, "children": [{"kind": "t3", "data": post}]},
        }
        comments = {"kind": "Listing", "data": {"after": None, "children": comments_for(post)}}
        return Answer(200, [listing, comments])


def running_reddit(**kwargs: Any) -> Iterator[FakeReddit]:
    yield from running(FakeReddit(**kwargs))
