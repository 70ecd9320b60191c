"""Sentiment and coin-tagging accuracy on the committed labelled headlines (no DB).

`tests/data/labelled_headlines.csv` was written and committed before the crypto lexicon or
the tagger existed; nothing was tuned to it afterwards. Measured at commit time: sentiment
72.9 % (86/118), coin tags 96.6 % (114/118, exact set match). The floors below leave a small
margin for library updates.
"""

from __future__ import annotations

import csv
from pathlib import Path

from omc.ledgers.human.coins import tag_coins
from omc.ledgers.human.sentiment import blend_votes, label, score_text

LABELLED = Path(__file__).parent / "data" / "labelled_headlines.csv"
SENTIMENT_FLOOR = 0.70
TAGGING_FLOOR = 0.90


def rows() -> list[dict[str, str]]:
    with LABELLED.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_labelled_set_is_large_enough_and_balanced() -> None:
    data = rows()
    assert len(data) >= 100
    assert {r["sentiment"] for r in data} == {"pos", "neg", "neu"}


def test_sentiment_accuracy_above_floor() -> None:
    data = rows()
    hits = sum(label(score_text(r["headline"])) == r["sentiment"] for r in data)
    accuracy = hits / len(data)
    print(f"\nsentiment accuracy: {accuracy:.1%} ({hits}/{len(data)})")
    assert accuracy >= SENTIMENT_FLOOR


def test_tagging_accuracy_above_floor() -> None:
    data = rows()
    hits = sum(set(tag_coins(r["headline"])) == set(r["coins"].split()) for r in data)
    accuracy = hits / len(data)
    print(f"\ncoin tagging accuracy: {accuracy:.1%} ({hits}/{len(data)})")
    assert accuracy >= TAGGING_FLOOR


def test_scores_stay_in_range() -> None:
    for r in rows():
        assert -1.0 <= score_text(r["headline"]) <= 1.0
    assert blend_votes(1.0, {"positive": 10**9}) <= 1.0
    assert blend_votes(-1.0, {"negative": "10", "toxic": None}) >= -1.0


def test_word_boundaries_and_ambiguous_symbols() -> None:
    assert tag_coins("Sol Price Bounces as Solana Volume Grows") == ["SOL"]
    assert tag_coins("The sol rises over the ONE-day chart") == ["ONE"]
    assert tag_coins("One trader lost it all") == []
    assert tag_coins("A link to the report") == []
    assert tag_coins("LINK and DOT rally") == ["LINK", "DOT"]
    assert tag_coins("BREAKING: ONE LINK TO RULE THEM ALL") == []  # shouting: no bare symbols
    assert tag_coins("$sol and $link are pumping") == ["SOL", "LINK"]
    assert tag_coins("Bitcoin Cash rallies") == ["BCH"]
    assert tag_coins("Bitcoin's dominance and ETH/BTC") == ["BTC", "ETH"]
    assert tag_coins("ETHER vs ETHEREUMX and BTCUSDT") == ["ETH"]  # ETHER is a name of ETH


def test_crypto_lexicon_and_votes() -> None:
    assert score_text("Got rekt, total rug") < -0.5
    assert score_text("SOL to the moon, very bullish") > 0.5
    assert score_text("Not bullish on this dump") < 0
    assert blend_votes(0.0, {"positive": 30, "negative": 0}) > 0.3
    assert blend_votes(0.0, {"positive": 0, "negative": 1}) > -0.1  # one vote barely counts
