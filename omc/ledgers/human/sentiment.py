"""Sentiment scores in [-1, 1]: VADER plus a crypto lexicon, blended with votes where present.

VADER (Hutto & Gilbert 2014) is a rule-based scorer tuned for short social text: it handles
negation ("not bullish"), intensifiers ("extremely"), capitals and punctuation, and its
`compound` score is already in [-1, 1]. Its stock lexicon knows nothing of crypto, so market
slang and news verbs are added on VADER's own -4..+4 valence scale (`CRYPTO_LEXICON`; values
chosen from what the words mean in crypto news, not fitted to any test set).

`label()` maps a score to pos / neu / neg with VADER's published ±0.05 thresholds.
`blend_votes()` mixes a text score with crowd votes (CryptoPanic `votes`): the vote balance
counts for at most half, and only as far as there are votes (n / (n + 10)).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

CRYPTO_LEXICON: dict[str, float] = {
    # market direction
    "moon": 2.5, "mooning": 2.8, "moons": 2.5, "bullish": 2.5, "bull": 1.5, "bulls": 1.5,
    "bearish": -2.5, "bear": -1.5, "bears": -1.2, "pump": 1.5, "pumps": 1.5, "pumping": 1.5,
    "dump": -2.2, "dumps": -2.2, "dumping": -2.2, "dumped": -2.0, "rally": 2.2,
    "rallies": 2.2, "rallied": 2.2, "surge": 2.2, "surges": 2.2, "surged": 2.2, "soar": 2.5,
    "soars": 2.5, "soared": 2.5, "soaring": 2.5, "jump": 1.5, "jumps": 1.5, "jumped": 1.5,
    "climb": 1.3, "climbs": 1.3, "climbed": 1.3, "gain": 1.5, "gains": 1.5, "rise": 1.2,
    "rises": 1.2, "rebound": 1.8, "rebounds": 1.8, "bounce": 1.3, "bounces": 1.3,
    "breakout": 2.0, "ath": 2.5, "skyrocket": 2.8, "skyrockets": 2.8, "outperform": 1.8,
    "outperforms": 1.8, "accumulate": 1.3, "accumulation": 1.3, "inflow": 1.5,
    "inflows": 1.5, "adoption": 1.5, "approval": 2.0, "approves": 2.0, "approved": 2.0,
    "launch": 1.0, "launches": 1.0, "partnership": 1.5, "partners": 1.3, "record": 1.2,
    "upgrade": 1.2, "hodl": 1.2, "wagmi": 2.0, "lambo": 2.0, "green": 1.0, "recovery": 1.5,
    "recovers": 1.5, "burn": 0.8, "airdrop": 1.2, "milestone": 1.5, "integration": 1.0,
    "plunge": -2.8, "plunges": -2.8, "plunged": -2.8, "crash": -3.0, "crashes": -3.0,
    "crashed": -3.0, "tumble": -2.3, "tumbles": -2.3, "tumbled": -2.3, "slump": -2.3,
    "slumps": -2.3, "slide": -1.8, "slides": -1.8, "sink": -2.0, "sinks": -2.0,
    "drop": -1.5, "drops": -1.5, "dropped": -1.5, "fall": -1.5, "falls": -1.5,
    "fell": -1.5, "decline": -1.5, "declines": -1.5, "selloff": -2.2, "sell-off": -2.2,
    "outflow": -1.5, "outflows": -1.5, "liquidation": -2.0, "liquidations": -2.0,
    "liquidated": -2.2, "capitulate": -2.5, "capitulation": -2.5, "correction": -1.2,
    "red": -1.0, "low": -0.8, "lows": -1.0, "dip": -1.0, "bloodbath": -3.0,
    "rekt": -3.0, "ngmi": -2.5, "fud": -2.0, "fomo": 0.5, "bagholder": -2.0,
    "bagholders": -2.0, "depeg": -2.8, "depegs": -2.8, "depegged": -2.8, "halted": -1.8,
    "halts": -1.8, "outage": -2.5, "outages": -2.5, "delisted": -2.5, "delist": -2.5,
    "delisting": -2.5, "unlock": -0.8, "dilution": -1.5, "insolvent": -3.0,
    "insolvency": -3.0, "bankruptcy": -3.0, "bankrupt": -3.0,
    # crime and enforcement
    "rug": -3.0, "rugged": -3.0, "rugpull": -3.2, "hack": -3.0, "hacks": -3.0,
    "hacked": -3.0, "hacker": -2.5, "hackers": -2.5, "exploit": -2.8, "exploits": -2.8,
    "exploited": -2.8, "drained": -2.8, "drains": -2.8, "stolen": -3.0, "steal": -3.0,
    "theft": -3.0, "scam": -3.0, "scams": -3.0, "scammer": -3.0, "ponzi": -3.0,
    "fraud": -3.0, "lawsuit": -2.0, "sued": -2.0, "sues": -2.0, "charged": -2.0,
    "charges": -1.5, "indicted": -2.8, "probe": -1.5, "investigation": -1.5,
    "crackdown": -2.2, "ban": -2.2, "bans": -2.2, "banned": -2.2, "fine": -1.0,
    "fined": -2.0, "penalty": -2.0, "manipulation": -2.2, "scrutiny": -1.5,
    "wells": -1.0, "freeze": -2.0, "freezes": -2.0, "frozen": -2.0, "attack": -2.5,
    "vulnerability": -2.0, "bug": -1.5, "phishing": -2.5, "laundering": -2.5,
}  # fmt: skip

# Phrases VADER cannot see as single tokens; replaced by one lexicon word before scoring.
PHRASES: dict[str, str] = {
    "all-time high": "ath",
    "all time high": "ath",
    "new high": "ath",
    "record high": "ath",
    "all-time low": "capitulation",
    "all time low": "capitulation",
    "rug pull": "rugpull",
    "pump and dump": "fraud",
    "sell off": "selloff",
    "short squeeze": "rally",
    "extreme fear": "capitulation",
    "to the moon": "moon",
    "loses peg": "depeg",
    "lost its peg": "depeg",
    "green light": "approval",
    "51% attack": "hack",
    "wells notice": "lawsuit",
    "flash loan attack": "exploit",
}

_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_PHRASE_RE = re.compile("|".join(re.escape(p) for p in PHRASES), re.IGNORECASE)


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
    text = _PHRASE_RE.sub(lambda m: PHRASES[m.group(0).lower()], text)
    return float(analyzer().polarity_scores(text)["compound"])


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


def engagement_weight(engagement: int | float | None) -> float:
    """Weight of an item in the hourly weighted mean: 1 + ln(1 + engagement)."""
    import math

    return 1.0 + math.log1p(max(0.0, float(engagement or 0)))
