"""Crypto wording for the sentiment scorer: lexicon, phrases, rewrites and neutral kinds.

VADER knows ordinary English; crypto news says things it misreads. This module owns what the
scorer adds, all on VADER's own -4..+4 valence scale:

* `CRYPTO_LEXICON` — market slang and news verbs ("rekt", "plummets", "stole", "greenlights"),
  and words whose ordinary valence is wrong in headlines ("top" and "hit" are neutral there,
  "bulls"/"bears" are actors rather than verdicts, "demand" is good news);
* `PHRASES` — several words that mean one thing ("all-time high", "short liquidations" are a
  rally, "return of funds", "white-hat hack", "fake news"), replaced by one lexicon word;
* `REWRITES` — patterns that change what a word means: charges, probes and lawsuits that are
  dropped, closed or dismissed are a win ("SEC to close investigation into Ethereum");
  bad things that surge are bad ("liquidations surge", "scams surge", "record outflows") and
  bad things that ease are good ("outflows slow"); "fails to hold" negates what follows;
* `neutral_kind()` — headlines that are information rather than news for a price: round-ups
  ("Top 5 crypto stories this week"), explainers ("what ETF inflows mean") and regulatory
  procedure (delays, votes, bills, rules, MiCA) unless the headline also reports an outcome
  (an approved ETF, charges, a hack, a price move). Their scores are damped towards zero.

Entries come from what the words mean in crypto news; they were chosen on the tuning part of
`tests/data/real_headlines.csv` and checked on its unseen part (see tests/test_human_accuracy.py).
"""

from __future__ import annotations

import re

CRYPTO_LEXICON: dict[str, float] = {
    # market direction
    "moon": 2.5, "mooning": 2.8, "moons": 2.5, "bullish": 2.5, "bull": 0.5, "bulls": 0.5,
    "bearish": -2.5, "bear": -0.5, "bears": -0.5, "pump": 1.5, "pumps": 1.5, "pumping": 1.5,
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
    "recovers": 1.5, "burn": 0.8, "airdrop": 1.2, "airdrops": 1.2, "milestone": 1.5,
    "integration": 1.0, "spike": 1.2, "spikes": 1.2, "spiked": 1.2, "surpasses": 1.2,
    "surpass": 1.2, "steadies": 0.8, "demand": 0.5, "victory": 2.5, "greenlight": 2.0,
    "greenlights": 2.0, "greenlit": 2.0, "legalized": 1.8, "legalizes": 1.8,
    "legalised": 1.8, "legalises": 1.8, "cleared": 2.0, "relief": 1.5, "refunded": 1.8,
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
    "insolvency": -3.0, "bankruptcy": -3.0, "bankrupt": -3.0, "plummet": -2.8,
    "plummets": -2.8, "plummeted": -2.8, "retreat": -1.2, "retreats": -1.2,
    "retreated": -1.2, "pullback": -1.0, "stumble": -1.8, "stumbles": -1.8, "rout": -2.5,
    "carnage": -3.0, "tsunami": -1.5, "wiped": -2.0, "dwindle": -1.5, "fades": -1.0,
    "wary": -1.2, "cracked": -1.5, "backlash": -2.0, "roils": -2.0, "fails": -2.2,
    "lose": -1.7, "loses": -1.8, "loss": -1.8, "losses": -2.0, "lost": -1.8,
    "misinformation": -2.0, "tariff": -1.0, "tariffs": -1.0,
    # neutral in headlines whatever they mean elsewhere
    "top": 0.0, "tops": 0.0, "hit": 0.0, "hits": 0.0,
    # crime and enforcement
    "rug": -3.0, "rugged": -3.0, "rugpull": -3.2, "hack": -3.0, "hacks": -3.0,
    "hacked": -3.0, "hacker": -2.5, "hackers": -2.5, "exploit": -2.8, "exploits": -2.8,
    "exploited": -2.8, "drained": -2.8, "drains": -2.8, "stolen": -3.0, "steal": -3.0,
    "steals": -3.0, "stole": -3.0, "stealing": -3.0, "heist": -2.8, "fleeces": -2.5,
    "theft": -3.0, "scam": -3.0, "scams": -3.0, "scammer": -3.0, "ponzi": -3.0,
    "fraud": -3.0, "lawsuit": -2.0, "sued": -2.0, "sues": -2.0, "charged": -2.0,
    "charges": -1.5, "indicted": -2.8, "probe": -1.5, "investigation": -1.5,
    "crackdown": -2.2, "ban": -2.2, "bans": -2.2, "banned": -2.2, "fine": -1.0,
    "fined": -2.0, "penalty": -2.0, "manipulation": -2.2, "scrutiny": -1.5,
    "wells": -1.0, "freeze": -2.0, "freezes": -2.0, "frozen": -2.0, "attack": -2.5,
    "vulnerability": -2.0, "bug": -1.5, "phishing": -2.5, "laundering": -2.5,
    "arrest": -2.0, "arrested": -2.0, "sentenced": -2.0, "sentence": -1.5,
    "extradition": -1.5, "confesses": -1.5, "backdoor": -2.0, "reckoning": -1.5,
    "prosecution": -2.0,
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
    "short liquidations": "rally",
    "shorts liquidated": "rally",
    "extreme fear": "capitulation",
    "to the moon": "moon",
    "loses peg": "depeg",
    "lost its peg": "depeg",
    "green light": "approval",
    "51% attack": "hack",
    "wells notice": "lawsuit",
    "flash loan attack": "exploit",
    "breaks out": "breakout",
    "broke out": "breakout",
    "fake news": "misinformation",
    "return of funds": "refunded",
    "returns funds": "refunded",
    "returned funds": "refunded",
    "funds returned": "refunded",
    "funds recovered": "refunded",
    "whitehat hack": "disclosure",
    "white hat hack": "disclosure",
    "white-hat hack": "disclosure",
    "liquidity boost": "inflows",
    "liquidity injection": "inflows",
    "stablecoin inflow": "inflows",
    "stablecoin inflows": "inflows",
    "rising stablecoin supply": "inflows",
    "selling pressure": "selloff",
    "legal reckoning": "prosecution",
    "rally behind": "back",
    "holds steady": "steady",
    "hold steady": "steady",
}

_BAD = (
    r"liquidations?|outflows?|losses|scams?|hacks?|thefts?|exploits?|fraud|sell-?offs?"
    r"|selloffs?|fears?|outages?|rug ?pulls?|rugpulls?"
)
_UP = (
    r"surge[sd]?|soar(?:s|ed|ing)?|jump(?:s|ed)?|spike[sd]?|climb(?:s|ed)?|rise[sn]?|rose"
    r"|swell(?:s|ed)?|mount(?:s|ed)?|balloon(?:s|ed)?|grow(?:s|n)?|multiply|proliferate"
)
_DOWN = (
    r"ease[sd]?|slow(?:s|ed)?|shrink(?:s)?|fade[sd]?|cool(?:s|ed)?|subside[sd]?"
    r"|decline[sd]?|drop(?:s|ped)?|fall(?:s)?|fell"
)
_CASE = r"charges?|investigation|probe|case|lawsuit|suit|appeal"
_CLEAR = (
    r"drop|drops|dropped|dropping|close|closes|closed|closing|end|ends|ended|dismiss"
    r"|dismisses|dismissed|withdraws?|withdrew|abandons?"
)

# (pattern, replacement), applied in order after PHRASES.
REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    # a case that is dropped, closed or dismissed is a win
    (re.compile(rf"\b(?:{_CLEAR})\b(?:\s+\S+){{0,3}}?\s+(?:{_CASE})\b", re.I), "cleared"),
    (re.compile(rf"\b(?:{_CASE})\s+(?:\S+\s+)?(?:{_CLEAR}|settled)\b", re.I), "cleared"),
    # bad things that surge are bad; bad things that ease are good
    (re.compile(rf"\b({_BAD})\b((?:\s+\S+){{0,2}}?)\s+(?:{_UP})\b", re.I), r"\1\2 more"),
    (
        re.compile(
            rf"\b(?:{_UP}|record|wave|avalanche|cascade|flood)\s+(?:(?:in|of)\s+)?({_BAD})\b", re.I
        ),
        r"more \1",
    ),
    (re.compile(rf"\b(?:{_BAD})\b(?:\s+\S+)?\s+(?:{_DOWN})\b", re.I), "relief"),
    # "fails to hold support": what fails is negated
    (
        re.compile(r"\b(fail(?:s|ed)?|unable|struggl(?:es|ed|ing)|refus(?:es|ed)) to\b", re.I),
        r"\1 to not",
    ),
)

_DIGEST = re.compile(
    r"\b(?:top \d+|this week in crypto|week in crypto|last week in crypto|news summary"
    r"|news roundup|news round-up|news highlights|daily brief|news to watch"
    r"|you might have missed|biggest (?:crypto|cryptocurrency) headlines"
    r"|stories you should know|stories from last week)\b",
    re.I,
)
_EXPLAINER = re.compile(
    r"\b(?:explained|explainer|what is|what are|how to|beginner'?s guide|a look back)\b", re.I
)
_PROCEDURE = re.compile(
    r"\b(?:delays?|delayed|postpones?|postponed|postponing|extends?|extended|punts?"
    r"|pushes (?:back|decision)|review period|comment period|deadline|decisions? on|votes?"
    r"|voting|bill|law|legislation|regulation|regulations|framework|rules|rulemaking"
    r"|licensing|mica|proposal|consultation|tax|taxes)\b",
    re.I,
)
_OUTCOME = re.compile(
    r"\b(?:approv\w*(?:\s+\S+){0,3}\s+(?:etfs?|funds?|listing)|greenl\w*|launch\w*"
    r"|inflows?|outflows?|surge\w*|soar\w*|plunge\w*|crash\w*|rall(?:y|ies|ied)|jump\w*"
    r"|tumble\w*|charge[sd]?|sue[sd]?|lawsuit|fined?|crackdown|bans?|banned|fraud|guilty"
    r"|hack\w*|exploit\w*|price|raise|bullish|bearish)\b",
    re.I,
)
_PHRASE_RE = re.compile(
    r"(?<![A-Za-z])("
    + "|".join(re.escape(p) for p in sorted(PHRASES, key=len, reverse=True))
    + r")(?![A-Za-z])",
    re.I,
)


def rewrite(text: str) -> str:
    """`text` with crypto phrases replaced by lexicon words and the REWRITES applied."""
    text = _PHRASE_RE.sub(lambda m: PHRASES[m.group(0).lower()], text)
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    return text


def neutral_kind(text: str) -> bool:
    """A round-up, an explainer, or regulatory procedure without a reported outcome."""
    if _DIGEST.search(text) or _EXPLAINER.search(text):
        return True
    return bool(_PROCEDURE.search(text)) and not _OUTCOME.search(text)
