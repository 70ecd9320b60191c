"""Sentiment and coin-tagging accuracy on committed labelled headlines (no DB).

Two labelled sets:

* `tests/data/labelled_headlines.csv` (118 headlines, written before the crypto lexicon or the
  tagger existed). Measured at the time: sentiment 72.9 %, tags 96.6 %; after the phrasing
  rules and context tags: 79.7 % / 98.3 %. Its floors keep it from getting worse.
* `tests/data/real_headlines.csv` (188 real headlines with sources, labelled and committed
  before tuning; see its README). A fixed rule puts a third of it aside as UNSEEN
  (sha256 of the headline % 3 == 0, 64 headlines); the rest is the tuning part.

Before -> after the changes of this module's commit (label accuracy / wrong sign / tags):
tuning 68.5 % / 14 of 96 / 98.4 %  ->  90.3 % / 3 of 96 / 100 %;
unseen 70.3 % / 3 of 52 / 93.8 %  ->  81.2 % / 2 of 52 / 100 %.
The floors below sit a little under the "after" numbers and above every "before" number.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from omc.ledgers.human.coins import tag_coins
from omc.ledgers.human.sentiment import blend_votes, label, score_text

DATA = Path(__file__).parent / "data"
LABELLED = DATA / "labelled_headlines.csv"
REAL = DATA / "real_headlines.csv"
OLD_SENTIMENT_FLOOR = 0.78
OLD_TAGGING_FLOOR = 0.97
TUNING_SENTIMENT_FLOOR = 0.85
UNSEEN_SENTIMENT_FLOOR = 0.78
TAGGING_FLOOR = 0.97
WRONG_SIGN_CEILING = 0.06  # share of polar headlines scored with the opposite sign


def rows(path: Path = LABELLED) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def unseen(headline: str) -> bool:
    """The fixed split rule, decided before tuning."""
    return int(hashlib.sha256(headline.encode("utf-8")).hexdigest(), 16) % 3 == 0


def real_part(part: str) -> list[dict[str, str]]:
    return [r for r in rows(REAL) if unseen(r["headline"]) == (part == "unseen")]


def sentiment_accuracy(data: list[dict[str, str]]) -> float:
    return sum(label(score_text(r["headline"])) == r["sentiment"] for r in data) / len(data)


def wrong_sign_share(data: list[dict[str, str]]) -> float:
    polar = [r for r in data if r["sentiment"] != "neu"]
    wrong = [r for r in polar if label(score_text(r["headline"])) not in (r["sentiment"], "neu")]
    return len(wrong) / len(polar)


def tagging_accuracy(data: list[dict[str, str]]) -> float:
    hits = sum(set(tag_coins(r["headline"])) == set(r["coins"].split()) for r in data)
    return hits / len(data)


def test_labelled_sets_are_large_enough_balanced_and_sourced() -> None:
    old, real = rows(), rows(REAL)
    assert len(old) >= 100
    assert len(real) >= 150
    for data in (old, real):
        assert {r["sentiment"] for r in data} == {"pos", "neg", "neu"}
    assert all(r["source"].strip() for r in real)
    assert not {r["headline"] for r in old} & {r["headline"] for r in real}
    assert len(real_part("unseen")) >= len(real) / 3 - 5


def test_old_set_accuracy_does_not_get_worse() -> None:
    sentiment, tags = sentiment_accuracy(rows()), tagging_accuracy(rows())
    print(f"\nold set: sentiment {sentiment:.1%}, tags {tags:.1%}")
    assert sentiment >= OLD_SENTIMENT_FLOOR
    assert tags >= OLD_TAGGING_FLOOR


@pytest.mark.parametrize(
    ("part", "floor"), [("tuning", TUNING_SENTIMENT_FLOOR), ("unseen", UNSEEN_SENTIMENT_FLOOR)]
)
def test_real_headlines_sentiment(part: str, floor: float) -> None:
    data = real_part(part)
    accuracy, wrong = sentiment_accuracy(data), wrong_sign_share(data)
    print(f"\n{part} ({len(data)}): sentiment {accuracy:.1%}, wrong sign {wrong:.1%}")
    assert accuracy >= floor
    assert wrong <= WRONG_SIGN_CEILING


@pytest.mark.parametrize("part", ["tuning", "unseen"])
def test_real_headlines_tags(part: str) -> None:
    data = real_part(part)
    accuracy = tagging_accuracy(data)
    print(f"\n{part} ({len(data)}): tags {accuracy:.1%}")
    assert accuracy >= TAGGING_FLOOR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the six ordinary-word traps: no tag
        ("Bitcoin rallies on renewed optimism over rate cuts", ["BTC"]),
        ("Bitcoin nears $30K amid increased BTC ETF optimism", ["BTC"]),
        ("Optimism Around Bitcoin ETF Approval", ["BTC"]),
        ("The Graph shows ETF inflows slowing", []),
        ("An avalanche of liquidations hits the market", []),
        ("An Avalanche Of Liquidations Hits Bitcoin", ["BTC"]),
        ("North Korea's Lazarus APT stole almost $240 million in crypto assets", []),
        ("Ledger, the maker of hardware wallets, plans an IPO", []),
        ("Crypto Market Maker Wintermute Hacked for $160M", []),
        ("Exploring the Ripple Effects of FTT's Collapse", ["FTT"]),
        # the same names where they name the coin
        ("Optimism's OP Token Plummets After Botched Airdrop", ["OP"]),
        ("Ethereum Layer 2 Optimism launches token airdrop", ["ETH", "OP"]),
        ("Optimism Airdrop Round Four Goes Live", ["OP"]),
        ("The Graph (GRT) rallies 20%", ["GRT"]),
        ("The Graph Network adds Arbitrum support", ["GRT", "ARB"]),
        ("Avalanche Foundation Announces $100M Fund", ["AVAX"]),
        ("Crypto Traders Grow Bearish as Aptos Plans $103M APT Token Unlock", ["APT"]),
        ("APT price slides after token unlock", ["APT"]),
        ("$APT pumps", ["APT"]),
        ("Maker governance votes to raise the DAI savings rate", ["MKR", "DAI"]),
        ("Ripple CEO Says XRP Lawsuit Could End This Year", ["XRP"]),
        ("Ripple Skyrockets: Legal Victory Sparks XRP Price Surge", ["XRP"]),
        ("Kraken Announces Support for Sui and Aptos", ["APT"]),
        ("Sui Network Halts Block Production", ["SUI"]),
    ],
)
def test_tags_need_a_coin_context_for_ordinary_words(text: str, expected: list[str]) -> None:
    assert tag_coins(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # losses and scandal scored positive before
        ("North Korea's Lazarus APT stole almost $240 million in crypto assets since June", "neg"),
        ("SBF tops a long list of crypto hot shots facing legal reckoning", "neg"),
        ("Optimism's OP Token Plummets After Botched Airdrop", "neg"),
        ("OP Token Plummets After Unexpected Optimism Giveaway", "neg"),
        ("Bitcoin liquidations surge as BTC retreats sharply", "neg"),
        ("Meme Coin Scams Surge, Investors Lose Billions as Rug Pulls Proliferate", "neg"),
        ("Yuga Labs' Otherside metaverse sale faces backlash", "neg"),
        (
            "The Lazarus Heist: How North Korea Turned Cybercrime Into a State-Sponsored Economy",
            "neg",
        ),
        # neutral regulatory news scored as news
        (
            "The US SEC is postponing decisions on multiple Bitcoin (BTC) and Ethereum (ETH) "
            "ETF applications",
            "neu",
        ),
        ("SEC extends review period for PENGU and T. Rowe crypto ETFs", "neu"),
        ("The European Council approves the MiCA, moving it closer to full implementation", "neu"),
        ("Cosmos Hub Passes Controversial Inflation Cut Proposal", "neu"),
        ("Top 5 Crypto Stories You Should Know About This Week", "neu"),
        # good news about liquidity (and cleared cases) scored negative before
        ("Crypto short liquidations near 800 million as Bitcoin price spikes unexpectedly", "pos"),
        (
            "Aptos price forecast: APT steadies amid rising stablecoin supply and retail demand",
            "pos",
        ),
        ("Kraken Confirms the Return of Funds from the Controversial Whitehat Hack", "pos"),
        ("ConsenSys Announces SEC to Close Investigation into Ethereum", "pos"),
        ("Nigeria Drops Tax Evasion Charges Against Binance Executives", "pos"),
        ("SEC greenlights Ether ETFs trading", "pos"),
        ("Tron to be Legalized in at least Five Countries", "pos"),
    ],
)
def test_sentiment_failure_cases(text: str, expected: str) -> None:
    assert label(score_text(text)) == expected, score_text(text)


def test_negation_and_crypto_phrasing() -> None:
    assert score_text("Traders are not bullish on ETH") < 0
    assert score_text("Bitcoin fails to hold support") < -0.05
    assert score_text("Exchange losses mount after hack") < -0.5
    assert score_text("Protocol exploited, $3M drained") < -0.5
    assert score_text("SEC sues exchange") < -0.05
    assert score_text("SEC approves spot ETF") > 0.3
    assert score_text("ETF inflows hit a record") > 0.3
    assert score_text("Liquidity boost for DeFi markets") > 0.05
    assert score_text("Outflows slow as traders return") > 0.05
    assert score_text("Record outflows from bitcoin funds") < -0.05
    assert score_text("This bill is great news, very bullish") > 0.5  # an outcome, not procedure
    body = "Lawmakers vote on the bill today. " + "Traders are thrilled and very bullish. " * 5
    assert score_text(body) > 0.5  # damping is for headlines only


def test_scores_stay_in_range() -> None:
    for r in rows() + rows(REAL):
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
