"""Cross-outlet story linking: the same story from several outlets shares one `story_key`.

Two items are the same story when, within `WINDOW` of each other,

* their canonical URLs are equal (tracking parameters, `www.`, fragments and trailing slashes
  removed) — CryptoPanic links the very article a feed also carries, or
* their headlines are near-identical: at least `MIN_SHARED` significant words in common and
  that covering `MIN_OVERLAP` of the shorter headline (syndicated wire copy, re-titled reposts).

The first item of a story names it (`story_key` = digest of its canonical URL, else of its
source id); later items adopt the stored key. The hourly aggregate counts a story once.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

WINDOW = timedelta(hours=48)
MIN_SHARED = 4
MIN_OVERLAP = 0.75

_TRACKING = re.compile(r"^(utm_.*|ref|ref_src|fbclid|gclid|mc_cid|mc_eid|cmpid|source|via)$", re.I)
_WORD = re.compile(r"[a-z0-9$%.,]+")
STOPWORDS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "from",
        "by", "with", "as", "is", "are", "was", "were", "be", "been", "it", "its", "this",
        "that", "these", "those", "after", "before", "over", "under", "into", "than", "then",
        "says", "said", "say", "new", "here", "what", "why", "how", "who", "will", "could",
        "would", "may", "might", "can", "has", "have", "had", "not", "no", "yes", "you",
        "your", "our", "we", "they", "their", "his", "her", "he", "she", "up", "down", "out",
        "about", "just", "now", "today", "amid",
    }
)  # fmt: skip


def canonical_url(url: str | None) -> str | None:
    """`https://www.x.com/a/?utm_source=rss#top` -> `https://x.com/a` (None for no URL)."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url or None
    if not parts.netloc:
        return url or None
    host = parts.netloc.lower()
    host = host[4:] if host.startswith("www.") else host
    query = urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        )
    )
    path = parts.path.rstrip("/") or ""
    return urlunsplit(
        ("https" if parts.scheme in ("http", "https") else parts.scheme, host, path, query, "")
    )


def title_tokens(title: str | None) -> frozenset[str]:
    """Significant words of a headline (lower case, stop words dropped, plural `s` cut)."""
    if not title:
        return frozenset()
    words = []
    for word in _WORD.findall(title.lower().replace("’", "'")):
        word = word.strip(".,")
        if len(word) < 2 or word in STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return frozenset(words)


def same_headline(a: frozenset[str], b: frozenset[str]) -> bool:
    shared = len(a & b)
    return shared >= MIN_SHARED and shared >= MIN_OVERLAP * min(len(a), len(b))


def make_key(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


@dataclass
class _Entry:
    key: str
    tokens: frozenset[str]
    at: datetime


@dataclass
class StoryIndex:
    """Known stories by canonical URL and by headline words (inverted index)."""

    by_url: dict[str, str] = field(default_factory=dict)
    entries: list[_Entry] = field(default_factory=list)
    by_word: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, key: str, url: str | None, title: str | None, at: datetime) -> None:
        canon = canonical_url(url)
        if canon:
            self.by_url.setdefault(canon, key)
        tokens = title_tokens(title)
        if len(tokens) >= MIN_SHARED:
            index = len(self.entries)
            self.entries.append(_Entry(key, tokens, at))
            for word in tokens:
                self.by_word[word].append(index)

    def find(self, url: str | None, title: str | None, at: datetime) -> str | None:
        canon = canonical_url(url)
        if canon and canon in self.by_url:
            return self.by_url[canon]
        tokens = title_tokens(title)
        if len(tokens) < MIN_SHARED:
            return None
        counts: dict[int, int] = defaultdict(int)
        for word in tokens:
            for index in self.by_word.get(word, ()):
                counts[index] += 1
        for index, shared in sorted(counts.items(), key=lambda kv: -kv[1]):
            if shared < MIN_SHARED:
                break
            entry = self.entries[index]
            if abs(entry.at - at) <= WINDOW and same_headline(tokens, entry.tokens):
                return entry.key
        return None

    def link(self, url: str | None, title: str | None, at: datetime, seed: str) -> str:
        """The key of the story this item belongs to (a new one named after `seed` if none)."""
        key = self.find(url, title, at) or make_key(canonical_url(url) or seed)
        self.add(key, url, title, at)
        return key
