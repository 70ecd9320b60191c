"""Coin tagging: which coins a headline, post or comment talks about.

Two regular expressions scan the text, both anchored on word boundaries (a letter, digit or
`$` must not touch either side, so `ETHER` is not `ETH` and `BTCUSDT` is no tag at all, while
`Bitcoin's`, `ETH/BTC` and `$SOL` are):

* names and unambiguous symbols, case-insensitive (`bitcoin`, `Ethereum`, `btc`, `Chainlink`);
  longer names win over their prefixes (`Bitcoin Cash` is BCH, not BTC), and
* symbols that are also English words (`SOL`, `ONE`, `LINK`, `DOT`, `NEAR`, `OP`, …), only in
  upper case and only when the text is not shouted (an all-caps headline), or as a cashtag in
  any case (`$sol`). "Sol Price Bounces" is tagged through "Solana", never through "Sol".

The table is deliberately small and explicit: the coins OMC trades or that dominate the news.
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
    "SUI": (),
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
CAPITALISED_NAMES = frozenset({"maker", "stellar", "cosmos", "ripple", "avalanche", "polygon"})


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


def tag_coins(*texts: str | None) -> list[str]:
    """Upper-case symbols of the coins the texts mention, in first-mention order."""
    found: dict[str, int] = {}
    for text in texts:
        if not text:
            continue
        hits: list[tuple[int, str]] = []
        for match in _CASELESS.finditer(text):
            word = match.group(1)
            lower = word.lower()
            if lower in CAPITALISED_NAMES and not word[0].isupper():
                continue
            hits.append((match.start(), _NAME_TO_SYMBOL[lower]))
        if not _shouting(text):
            hits.extend((m.start(), m.group(1)) for m in _UPPER.finditer(text))
        hits.extend((m.start(), m.group(1).upper()) for m in _CASHTAG.finditer(text))
        for position, symbol in sorted(hits):
            found.setdefault(symbol, position)
    return list(found)


def normalise_codes(codes: Iterable[object]) -> list[str]:
    """Coin codes from a source (CryptoPanic `currencies` / `instruments`), upper case, unique."""
    out: dict[str, None] = {}
    for code in codes:
        if isinstance(code, str) and code.strip():
            out[code.strip().upper()] = None
    return list(out)
