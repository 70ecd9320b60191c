"""Coin tagging: which coins a headline, post or comment talks about.

Regular expressions scan the text, anchored on word boundaries (a letter, digit or `$` must
not touch either side, so `ETHER` is not `ETH` and `BTCUSDT` is no tag at all, while
`Bitcoin's`, `ETH/BTC` and `$SOL` are):

* names and unambiguous symbols, case-insensitive (`bitcoin`, `Ethereum`, `btc`, `Chainlink`);
  longer names win over their prefixes (`Bitcoin Cash` is BCH, not BTC);
* symbols that are also English words (`SOL`, `ONE`, `LINK`, `DOT`, `NEAR`, `OP`, …), only in
  upper case and only when the text is not shouted (an all-caps headline), or as a cashtag in
  any case (`$sol`). "Sol Price Bounces" is tagged through "Solana", never through "Sol";
* names that are ordinary words (`CONTEXT_NAMES`: "optimism", "the graph", "avalanche",
  "maker", "ripple") only where the text names the coin: capitalised, and either next to a
  coin word (`COIN_CONTEXT` right after, "Optimism airdrop", "Avalanche
  Foundation", "Ripple CEO"; or "layer"/"L2" just before, "Layer 2 Optimism") or with the
  coin's own symbol elsewhere in the text ("Ripple wins, XRP soars"). So "an avalanche of
  liquidations", "The Graph shows", "market maker Wintermute", "ripple effects" and "ETF
  optimism" are no tags;
* symbols that are common acronyms (`CONTEXT_SYMBOLS`: `APT`, an "advanced persistent threat"
  hacker group) only as a cashtag, next to a coin word ("APT token", "APT price") or with the
  coin's name in the text ("Aptos … APT").

The table is deliberately small and explicit: the coins OMC trades or that dominate the news.
`coin_mentions()` returns the accepted spans, so the sentiment scorer can keep coin names that
are sentiment words ("Optimism", "Stellar", "Harmony") out of the score.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# symbol -> names (lower case); the symbol itself is matched case-insensitively unless it is
# listed in AMBIGUOUS.
COINS: dict[str, tuple[str, ...]] = {
    "BTC": ("bitcoin", "xbt", "sats"),
    "ETH": ("ethereum", "ether", "eth2"),
    "USDT": ("tether",),
    "USDC": ("usd coin",),
    "DAI": (),
    "BNB": ("binance coin", "bnb chain", "bnb smart chain"),
    "XRP": ("ripple", "xrp ledger"),
    "SOL": ("solana",),
    "ADA": ("cardano",),
    "DOGE": ("dogecoin",),
    "TRX": ("tron", "tronix"),
    "TON": ("toncoin", "the open network"),
    "DOT": ("polkadot",),
    "MATIC": ("polygon",),
    "LINK": ("chainlink",),
    "AVAX": ("avalanche",),
    "SHIB": ("shiba inu", "shib inu"),
    "LTC": ("litecoin",),
    "BCH": ("bitcoin cash",),
    "ETC": ("ethereum classic",),
    "XLM": ("stellar lumens", "stellar"),
    "XMR": ("monero",),
    "ATOM": ("cosmos hub", "cosmos"),
    "UNI": ("uniswap",),
    "AAVE": (),
    "MKR": ("makerdao", "maker dao", "maker"),
    "CRV": ("curve finance", "curve dao"),
    "LDO": ("lido dao", "lido"),
    "NEAR": ("near protocol",),
    "APT": ("aptos",),
    "SUI": ("sui network",),
    "ARB": ("arbitrum",),
    "OP": ("optimism",),
    "FIL": ("filecoin",),
    "ICP": ("internet computer",),
    "HBAR": ("hedera hashgraph", "hedera"),
    "ALGO": ("algorand",),
    "VET": ("vechain",),
    "XTZ": ("tezos",),
    "SAND": ("the sandbox",),
    "MANA": ("decentraland",),
    "INJ": ("injective",),
    "WLD": ("worldcoin",),
    "PEPE": ("pepe coin", "pepecoin"),
    "ONE": ("harmony one",),
    "LUNA": ("terra luna",),
    "LUNC": ("terra luna classic", "terra classic"),
    "FTT": ("ftx token",),
    "KAS": ("kaspa",),
    "HYPE": ("hyperliquid",),
    "PI": ("pi network",),
    "RON": ("ronin",),
    "ENS": ("ethereum name service",),
    "GRT": ("the graph",),
    "RNDR": ("render token",),
    "IMX": ("immutable x",),
    "EOS": (),
    "ZEC": ("zcash",),
    "DASH": (),
    "NXT": (),
}

# Symbols that are ordinary words (or too short) in lower or title case.
AMBIGUOUS = frozenset(
    {
        "SOL", "ONE", "LINK", "DOT", "NEAR", "OP", "UNI", "ATOM", "SAND", "MANA", "ENS",
        "TON", "PI", "RON", "HYPE", "DAI", "SUI", "FIL", "ICP", "APT", "ARB", "DASH", "KAS",
        "EOS", "VET", "GRT", "INJ", "WLD", "ALGO", "PEPE", "MAKER", "ETC",
    }
)  # fmt: skip

# Names that are ordinary words unless capitalised ("maker", "tron", "stellar", "cosmos").
CAPITALISED_NAMES = frozenset(
    {"maker", "stellar", "cosmos", "ripple", "avalanche", "polygon", "optimism", "the graph"}
)

# Names that are ordinary words even when capitalised: they need a coin word next to them or
# the coin's symbol elsewhere in the text.
CONTEXT_NAMES = frozenset({"optimism", "the graph", "avalanche", "maker", "ripple"})

# Upper-case symbols that are also common acronyms: they need the same kind of context.
CONTEXT_SYMBOLS = frozenset({"APT"})

# Words that, right after a name or symbol, show that the coin is meant.
COIN_CONTEXT = frozenset(
    {
        "token", "tokens", "coin", "coins", "price", "prices", "network", "mainnet",
        "testnet", "blockchain", "chain", "protocol", "staking", "stakers", "validators",
        "foundation", "labs", "dao", "ecosystem", "airdrop", "airdrops", "etf", "etfs",
        "holders", "whales", "treasury", "tvl", "dex", "bridge", "wallet", "governance",
        "upgrade", "supply", "unlock", "rollup", "superchain", "collective", "ceo",
        "founder", "co-founder", "cto", "developers", "devs", "community", "crypto",
        "market cap", "futures", "rally", "rallies", "surges", "plunges", "drops",
    }
)  # fmt: skip
_LEADING_CONTEXT = frozenset({"layer", "l2", "layer-2"})
_WORD = re.compile(r"[A-Za-z0-9$][A-Za-z0-9$'\-]*")


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_BOUNDARY_L = r"(?<![A-Za-z0-9$])"
_BOUNDARY_R = r"(?![A-Za-z0-9])"

_NAME_TO_SYMBOL: dict[str, str] = {}
for _symbol, _names in COINS.items():
    for _name in _names:
        _NAME_TO_SYMBOL[_name] = _symbol
    if _symbol not in AMBIGUOUS:
        _NAME_TO_SYMBOL.setdefault(_symbol.lower(), _symbol)

_CASELESS = re.compile(
    _BOUNDARY_L + r"(" + _alternation(_NAME_TO_SYMBOL) + r")(?:'s)?" + _BOUNDARY_R, re.IGNORECASE
)
_UPPER = re.compile(_BOUNDARY_L + r"(" + _alternation(AMBIGUOUS & set(COINS)) + r")" + _BOUNDARY_R)
_CASHTAG = re.compile(r"(?<![A-Za-z0-9])\$(" + _alternation(COINS) + r")" + _BOUNDARY_R, re.I)


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) > 0.7 * len(letters)


def _words(text: str) -> list[str]:
    return [w.lower().removesuffix("'s") for w in _WORD.findall(text)]


def _named_as_coin(text: str, start: int, end: int, symbol: str, name: str | None) -> bool:
    """Whether the ambiguous word at text[start:end] names the coin `symbol`."""
    after = _words(text[end:])[:2]
    if after and (after[0] in COIN_CONTEXT or " ".join(after) in COIN_CONTEXT):
        return True
    if any(w in _LEADING_CONTEXT for w in _words(text[:start])[-2:]):
        return True
    others = text[:start] + " " + text[end:]
    if name is not None:  # a name: does the text also carry the symbol?
        return re.search(_BOUNDARY_L + r"\$?" + re.escape(symbol) + _BOUNDARY_R, others) is not None
    names = [n for n in COINS[symbol] if n not in CONTEXT_NAMES]  # a symbol: is the name there?
    return any(re.search(r"\b" + re.escape(n) + r"\b", others, re.I) for n in names)


def coin_mentions(text: str | None) -> list[tuple[int, int, str]]:
    """(start, end, symbol) of every accepted coin mention in `text`, in text order."""
    if not text:
        return []
    hits: list[tuple[int, int, str]] = []
    for match in _CASELESS.finditer(text):
        word = match.group(1)
        lower = word.lower()
        symbol = _NAME_TO_SYMBOL[lower]
        if lower in CAPITALISED_NAMES and not word[0].isupper():
            continue
        if lower in CONTEXT_NAMES and not _named_as_coin(
            text, match.start(), match.end(), symbol, lower
        ):
            continue
        hits.append((match.start(), match.end(), symbol))
    if not _shouting(text):
        for match in _UPPER.finditer(text):
            symbol = match.group(1)
            if symbol in CONTEXT_SYMBOLS and not _named_as_coin(
                text, match.start(), match.end(), symbol, None
            ):
                continue
            hits.append((match.start(), match.end(), symbol))
    hits.extend((m.start(), m.end(), m.group(1).upper()) for m in _CASHTAG.finditer(text))
    return sorted(hits)


def tag_coins(*texts: str | None) -> list[str]:
    """Upper-case symbols of the coins the texts mention, in first-mention order."""
    found: dict[str, None] = {}
    for text in texts:
        for _start, _end, symbol in coin_mentions(text):
            found.setdefault(symbol, None)
    return list(found)


def normalise_codes(codes: Iterable[object]) -> list[str]:
    """Coin codes from a source (CryptoPanic `currencies` / `instruments`), upper case, unique."""
    out: dict[str, None] = {}
    for code in codes:
        if isinstance(code, str) and code.strip():
            out[code.strip().upper()] = None
    return list(out)
