"""Reading a research goal in words: the terms the offline planner understands.

`read_goal(text, exchanges=..., coins=...)` returns `GoalTerms`: the coins and pairs named
(in order of mention), an exchange, a bar timeframe, a horizon (in bars, or as a duration the
planner converts with the timeframe), the target kind and threshold, feature families,
models, a trial budget and evaluation words — each with the words that produced it, so the
planner can list them as assumptions. Pure text in, terms out: no catalog, no defaults (those
are the planner's). `answer=True` reads a reply to a clarifying question, where a bare "1h"
is a timeframe ("binance 1h") rather than a horizon.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from omc.lab.plan import FeatureFamily, ModelName, TargetKind

# coin names and tickers -> ticker; longer names first so "ethereum classic" beats "ethereum"
COIN_NAMES: dict[str, str] = {
    "bitcoin cash": "BCH",
    "ethereum classic": "ETC",
    "bitcoin": "BTC",
    "ethereum": "ETH",
    "ether": "ETH",
    "solana": "SOL",
    "cardano": "ADA",
    "ripple": "XRP",
    "dogecoin": "DOGE",
    "litecoin": "LTC",
    "polkadot": "DOT",
    "avalanche": "AVAX",
    "chainlink": "LINK",
    "polygon": "MATIC",
    "tron": "TRX",
    "cosmos": "ATOM",
    "stellar": "XLM",
    "uniswap": "UNI",
    "shiba inu": "SHIB",
    "binance coin": "BNB",
    "monero": "XMR",
    "lido": "LDO",
    "aave": "AAVE",
}
# tickers read in any case; RISKY ones (English words) only when written in capitals
TICKERS = {
    "BTC", "XBT", "ETH", "SOL", "ADA", "XRP", "DOGE", "LTC", "AVAX", "BNB", "MATIC", "TRX",
    "NXT", "LDO", "AAVE", "XLM", "BCH", "SHIB", "PEPE", "ARB", "XMR",
}  # fmt: skip
RISKY_TICKERS = {"LINK", "DOT", "UNI", "NEAR", "ATOM", "ONE", "OP", "APT", "SUI", "ETC", "DASH"}
ALIASES = {"XBT": "BTC"}
QUOTES = ("USDT", "USDC", "BUSD", "USD", "AUD", "EUR", "BTC", "ETH")
EXCHANGES = (
    "binance", "coinspot", "kraken", "coinbase", "bittrex", "bybit", "okx", "bitfinex",
    "kucoin", "bitstamp", "gemini", "poloniex",
)  # fmt: skip

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30, "sixty": 60,
}  # fmt: skip
_WORDS = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
# a number, then a unit: digits may touch it ("4h", "4-hour"), words may not ("as" is no "a s")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONG_UNIT = r"seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|wks?"
_UNIT = rf"({_LONG_UNIT}|[smhdw])"
_COUNT_UNIT = rf"(?:(\d+)\s*-?\s*({_LONG_UNIT}|[smhdw])|({_WORDS})(?:\s+|-)({_LONG_UNIT}))\b"
_BARS = r"(?:bars?|candles?|candlesticks?)"

# (pattern, families, note): applied in order, each match blanked so later patterns miss it
FEATURE_WORDS: list[tuple[str, tuple[FeatureFamily, ...], str | None]] = [
    (r"news[- ]?(?:volume|flow|count)s?", ("news_volume",), None),
    (r"sentiment|\bmood\b|social|reddit|twitter|tweets?", ("sentiment",), None),
    (r"\bnews\b|headlines?|articles?", ("news_volume",), None),
    (r"\btvl\b|total value locked", ("tvl",), None),
    (r"protocol fees?|\bfees?\b|revenue", ("fees",), None),
    (
        r"on[- ]?chain|\bdefi\b|fundamentals?",
        ("tvl", "fees"),
        "'{word}' → the Glass ledger's TVL and fees change",
    ),
    (
        r"(?:de)?listings?|filings?|catalysts?|announcements?|\bsec\b|\betfs?\b|\bevents?\b",
        ("catalyst",),
        "'{word}' → catalyst features (time since the last listing / delisting / filing, "
        "decaying weight)",
    ),
    (
        r"mean[- ]?revers\w*|revert\w*|oversold|overbought",
        ("rsi", "sma_ratio"),
        "'{word}' → RSI and SMA-ratio features",
    ),
    (r"momentum|trend\w*", ("returns", "sma_ratio"), "'{word}' → lagged returns and SMA ratios"),
    (r"\brsi\b", ("rsi",), None),
    (r"\bsma\b|moving averages?", ("sma_ratio",), None),
    (r"volume", ("volume_z",), None),
    (r"volatility|\bvol\b", ("volatility",), None),
    (r"(?:past|lagged|recent|previous) returns?|\breturns\b", ("returns",), None),
    (
        r"price[- ]only|technicals?|price action|\bta\b",
        ("returns", "volatility", "rsi", "sma_ratio", "volume_z"),
        None,
    ),
]
MODEL_WORDS: list[tuple[str, ModelName, str | None]] = [
    (
        r"logistic(?: regression)?|\blogit\b|linear (?:model|regression|classifier)",
        "logistic",
        None,
    ),
    (r"random[- ]?forests?|\brf\b|\bforests?\b", "random_forest", None),
    (r"light[- ]?gbm|\blgbm\b", "lightgbm", None),
    (
        r"xgboost|\bxgb\b|catboost|gradient[- ]?boost\w*|boosted trees?|\bgbm\b|\bgbdt\b|boosting",
        "lightgbm",
        "'{word}' → LightGBM (the Lab's gradient-boosting model)",
    ),
]
_TARGET_VERBS = (
    r"\b(?:predicts?|predicting|forecasts?|forecasting|foresee|anticipates?|explains?)\b"
)
_FEATURE_SPLIT = r"\b(?:using|uses|with|from|based on|given|via|by looking at|features?|signals?)\b"


@dataclass
class GoalTerms:
    """What a goal (or an answer) says. Lists keep the order of mention; None = not said."""

    coins: list[str] = field(default_factory=list)
    pairs: list[str] = field(default_factory=list)
    exchange: str | None = None
    timeframe: str | None = None
    horizon_bars: int | None = None
    horizon_seconds: int | None = None
    horizon_text: str | None = None
    target: TargetKind | None = None
    target_text: str | None = None
    threshold: float | None = None
    threshold_text: str | None = None
    features: list[FeatureFamily] = field(default_factory=list)
    models: list[ModelName] = field(default_factory=list)
    trials: int | None = None
    protocol: str | None = None  # a DeFiLlama slug named with TVL / fee words
    scheme: str | None = None
    folds: int | None = None
    fee_bps: float | None = None
    holdout_fraction: float | None = None
    embargo_bars: int | None = None
    seed: int | None = None
    notes: list[str] = field(default_factory=list)  # word → meaning, for the assumptions

    def overlay(self, other: GoalTerms) -> GoalTerms:
        """These terms with every term `other` states replacing ours (an answer's terms)."""
        merged = GoalTerms()
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            setattr(merged, f.name, theirs if theirs not in (None, []) else mine)
        if other.horizon_bars is not None or other.horizon_seconds is not None:
            merged.horizon_bars, merged.horizon_seconds = other.horizon_bars, other.horizon_seconds
            merged.horizon_text = other.horizon_text
        merged.notes = self.notes + other.notes
        return merged


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _count_seconds(m: re.Match[str]) -> int:
    count, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return _number(count) * _unit_seconds(unit)


def _unit_seconds(unit: str) -> int:
    return _UNIT_SECONDS["m" if unit.startswith("mi") else unit[0]]


def _blank(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def _first(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text)


def _read_pairs(raw: str, low: str, terms: GoalTerms, bases: set[str]) -> str:
    quotes = "|".join(QUOTES)
    for m in list(re.finditer(r"\b([A-Za-z0-9]{2,10})\s*[/_-]\s*([A-Za-z0-9]{2,10})\b", raw)):
        base, quote = m.group(1).upper(), m.group(2).upper()
        if quote in QUOTES and (base in bases or base in TICKERS or base in RISKY_TICKERS):
            terms.pairs.append(f"{ALIASES.get(base, base)}/{quote}")
            low, raw = _blank(low, m), _blank(raw, m)
    for m in re.finditer(rf"\b([A-Z]{{2,6}}?)({quotes})\b", raw):
        base = m.group(1)
        if base in bases or base in TICKERS or base in RISKY_TICKERS:
            terms.pairs.append(f"{ALIASES.get(base, base)}/{m.group(2)}")
            low = _blank(low, m)
    return low


def _read_coins(raw: str, low: str, bases: set[str]) -> list[str]:
    found: list[tuple[int, str]] = []
    for name, ticker in COIN_NAMES.items():
        for m in re.finditer(rf"\b{re.escape(name)}s?\b", low):
            found.append((m.start(), ticker))
            low = _blank(low, m)
    for m in re.finditer(r"\b[A-Za-z0-9]{2,10}\b", low):
        word = m.group(0)
        original = raw[m.start() : m.end()]
        upper = word.upper()
        if upper in TICKERS or (original.isupper() and (upper in RISKY_TICKERS or upper in bases)):
            found.append((m.start(), ALIASES.get(upper, upper)))
    coins: list[str] = []
    for _, coin in sorted(found):
        if coin not in coins:
            coins.append(coin)
    return coins


def _read_timeframe(low: str, answer: bool) -> tuple[str | None, str]:
    patterns = [
        rf"\b(\d+)\s*-?\s*{_UNIT}\s+{_BARS}",
        rf"\b(\d+)\s*-?\s*{_UNIT}\s+(?:timeframe|charts?|data|resolution|interval)",
        rf"\b(?:timeframe|resolution|interval)\s+(?:of\s+)?(\d+)\s*{_UNIT}\b",
        r"\b(?:on|using|with)\s+(?:the\s+)?(\d+)([mhdw])\b(?!\s*(?:ahead|forward|later|out))",
    ]
    if answer:
        patterns.append(r"\b(\d+)([mhdw])\b")
    for pattern in patterns:
        m = _first(pattern, low)
        if m:
            unit = m.group(2)
            letter = "m" if unit.startswith("mi") else unit[0]
            return f"{int(m.group(1))}{letter}", _blank(low, m)
    named = {"minute": "1m", "hourly": "1h", "daily": "1d", "weekly": "1w"}
    m = _first(rf"\b(minute|hourly|daily|weekly)\s+{_BARS}", low)
    if m:
        return named[m.group(1)], _blank(low, m)
    return None, low


def _read_horizon(low: str, terms: GoalTerms) -> str:
    bars = [
        (r"\bnext\s+(?:bar|candle)\b", lambda m: 1),
        (
            rf"\b(?:next\s+)?(?:(\d+)\s*-?\s*|({_WORDS})(?:\s+|-)){_BARS}",
            lambda m: _number(m.group(1) or m.group(2)),
        ),
        (rf"\bhorizon\s+(?:of\s+)?(\d+)\b(?!\s*{_UNIT}\b)", lambda m: int(m.group(1))),
    ]
    for pattern, count in bars:
        m = _first(pattern, low)
        if m:
            terms.horizon_bars, terms.horizon_text = count(m), m.group(0).strip()
            return _blank(low, m)
    durations = [
        (rf"\bnext\s+{_UNIT}\b", lambda m: _unit_seconds(m.group(1))),
        (rf"\b{_COUNT_UNIT}", _count_seconds),
        (r"\btomorrow\b|\bdaily\b|\bintraday\b", lambda m: 86400),
        (r"\bhourly\b", lambda m: 3600),
        (r"\bweekly\b", lambda m: 604800),
    ]
    for pattern, seconds in durations:
        m = _first(pattern, low)
        if m:
            terms.horizon_seconds, terms.horizon_text = seconds(m), m.group(0).strip()
            return _blank(low, m)
    return low


def _read_target(clause: str, terms: GoalTerms) -> None:
    checks: list[tuple[str, TargetKind]] = [
        (r"volatil\w*|\bvol\b|big moves?|large moves?|(?:price )?swings?", "volatility"),
        (
            r"direction\w*|up or down|down or up|\bup\b|\bdown\b|\brises?\b|\bfalls?\b|"
            r"higher|lower|bull\w*|bear\w*|\bpumps?\b|\bdumps?\b|positive|negative",
            "direction",
        ),
        (r"\breturns?\b|how much|price change|percent(?:age)? (?:change|move)", "forward_return"),
    ]
    for pattern, kind in checks:
        m = _first(pattern, clause)
        if m:
            terms.target, terms.target_text = kind, m.group(0)
            return


def _families(text: str, feature_text: str | None, terms: GoalTerms) -> None:
    """Feature words anywhere in `text`; but "returns" / "volatility", which may be the
    target, only in `feature_text` (the goal outside its target clause; None = no such part)."""
    for pattern, families, note in FEATURE_WORDS:
        target_word = families in (("returns",), ("volatility",))
        where = (feature_text or "") if target_word else text
        for m in list(re.finditer(pattern, where)):
            for family in families:
                if family not in terms.features:
                    terms.features.append(family)
            if note:
                terms.notes.append(note.format(word=m.group(0)))
            if not target_word:
                text = _blank(text, m)


def _models(low: str, terms: GoalTerms) -> None:
    for pattern, model, note in MODEL_WORDS:
        for m in list(re.finditer(pattern, low)):
            if model not in terms.models:
                terms.models.append(model)
            if note:
                terms.notes.append(note.format(word=m.group(0)))
            low = _blank(low, m)


def protocol_words(slug: str) -> list[str]:
    """How a goal may name a DeFiLlama protocol: 'curve-dex' -> ['curve-dex', 'curve dex',
    'curve']; 'makerdao' -> ['makerdao', 'maker']."""
    words = [slug, slug.replace("-", " "), slug.split("-")[0]]
    if slug.endswith("dao") and len(slug) > 5:
        words.append(slug[:-3])
    return list(dict.fromkeys(words))


def _read_protocol(low: str, protocols: Iterable[str], terms: GoalTerms) -> re.Match[str] | None:
    found: list[tuple[int, str, re.Match[str]]] = []
    for slug in protocols:
        for word in protocol_words(slug.lower()):
            m = _first(rf"\b{re.escape(word)}\b", low)
            if m:
                found.append((m.start(), slug, m))
                break
    if not found:
        return None
    _, terms.protocol, match = min(found, key=lambda f: f[0])
    return match


def read_goal(
    text: str,
    *,
    exchanges: Iterable[str] = (),
    coins: Iterable[str] = (),
    protocols: Iterable[str] = (),
    answer: bool = False,
) -> GoalTerms:
    """The terms of `text`. `exchanges` / `coins`: names known besides the built-in ones (the
    catalog's), so a stored exchange or a stored coin's ticker (in capitals) is recognised.
    `protocols`: DeFiLlama slugs; one named with TVL/fee words is the protocol whose figures
    are the Glass features (and then not a coin: "Lido TVL" is no vote for LDO)."""
    terms = GoalTerms()
    raw = text
    low = text.lower()
    bases = {c.upper() for c in coins}
    low = _read_pairs(raw, low, terms, bases)
    for name in sorted({*EXCHANGES, *(e.lower() for e in exchanges)}, key=len, reverse=True):
        m = _first(rf"\b{re.escape(name)}\b", low)
        if m and terms.exchange is None:
            terms.exchange = name
            low = _blank(low, m)
    m = _first(r"(\d+(?:\.\d+)?)\s*(%|bps|basis points?)\s*(?:trading\s+|taker\s+)?fees?", low)
    m = m or _first(r"fees?\s+(?:of\s+)?(\d+(?:\.\d+)?)\s*(%|bps|basis points?)", low)
    if m:
        value = float(m.group(1))
        terms.fee_bps = value * 100 if m.group(2) == "%" else value
        low = _blank(low, m)
    m = _first(r"hold[- ]?out\s+(?:of\s+)?(?:the\s+last\s+)?(\d+(?:\.\d+)?)\s*%", low)
    m = m or _first(r"(\d+(?:\.\d+)?)\s*%\s+(?:sealed\s+)?hold[- ]?out", low)
    if m:
        terms.holdout_fraction = float(m.group(1)) / 100
        low = _blank(low, m)
    m = _first(r"embargo\s+(?:of\s+)?(\d+)(?:\s*(?:bars?|candles?))?", low)
    if m:
        terms.embargo_bars = int(m.group(1))
        low = _blank(low, m)
    m = _first(r"\b(?:random\s+)?seed\s*(?:=|of|:)?\s*(\d+)", low)
    if m:
        terms.seed = int(m.group(1))
        low = _blank(low, m)
    m = _first(
        r"(?:by|more than|over|above|at least|exceeds?|exceeding)\s+(\d+(?:\.\d+)?)\s*%", low
    )
    m = m or _first(r"(?:rises?|falls?|moves?|gains?|drops?)\s+(?:of\s+)?(\d+(?:\.\d+)?)\s*%", low)
    if m:
        terms.threshold = math.log1p(float(m.group(1)) / 100)
        terms.threshold_text = m.group(0)
        low = _blank(low, m)
    m = _first(r"\b(\d+)\s*(?:optuna\s+)?(?:trials?|tries|iterations|attempts|configurations)", low)
    m = m or _first(r"budget of\s+(\d+)", low)
    if m:
        terms.trials = _number(m.group(1))
        low = _blank(low, m)
    m = _first(r"(?:after|net of|including|with|minus)\s+(?:trading\s+|taker\s+)?fees\b", low)
    if m:
        low = _blank(low, m)  # trading fees, not the protocol-fees feature
    m = _first(r"\b(\d+)[- ]?folds?\b", low)
    if m:
        terms.folds = int(m.group(1))
        low = _blank(low, m)
    m = _first(r"\b(rolling|sliding|expanding|anchored)\b", low)
    if m:
        terms.scheme = "rolling" if m.group(1) in ("rolling", "sliding") else "expanding"
        low = _blank(low, m)
    _models(low, terms)
    terms.timeframe, low = _read_timeframe(low, answer)
    low = _read_horizon(low, terms)
    verb = _first(_TARGET_VERBS, low)
    start = verb.end() if verb else 0
    split = re.compile(_FEATURE_SPLIT).search(low, start)
    end = split.start() if split else len(low)
    target_clause = low[start:end]
    _read_target(target_clause, terms)
    whole = start == 0 and end == len(low)
    feature_text = None if whole else low[:start] + " " * (end - start) + low[end:]
    _families(low, feature_text, terms)
    named = _read_protocol(low, protocols, terms)
    if named is not None and any(f in terms.features for f in ("tvl", "fees")):
        low = _blank(low, named)
    else:
        terms.protocol = None
    terms.coins = _read_coins(raw, low, bases)
    return terms
