"""Classification of catalyst events: SEC forms with an impact score, announcement kinds, coins.

SEC: every form type maps to a kind and a base impact in [0, 1] (how likely the filing is to
move the price of the company's stock or of the crypto assets it holds). Amendments (`/A`)
score lower; an 8-K gets a bonus for the items that usually matter (material agreements,
acquisitions, cyber incidents, officer changes).

Announcements: the title (then the body) decides the kind — `delisting`, `trading_halt`,
`maintenance`, `listing`, `feature`, else `other` — checked in that order, because "delisting"
contains "listing" and a halt notice often mentions maintenance. Coins are extracted from
`Name (TICKER)`, `$TICKER` and `TICKER/AUD` patterns.
"""

from __future__ import annotations

import html
import re

# form -> (kind, base impact)
SEC_FORMS: dict[str, tuple[str, float]] = {
    "8-K": ("current_report", 0.7),
    "6-K": ("current_report", 0.5),
    "S-1": ("registration", 0.8),
    "S-3": ("registration", 0.6),
    "S-4": ("registration", 0.6),
    "F-1": ("registration", 0.7),
    "424B1": ("prospectus", 0.5),
    "424B2": ("prospectus", 0.4),
    "424B3": ("prospectus", 0.4),
    "424B4": ("prospectus", 0.5),
    "424B5": ("prospectus", 0.4),
    "10-K": ("annual_report", 0.5),
    "20-F": ("annual_report", 0.5),
    "40-F": ("annual_report", 0.5),
    "10-Q": ("quarterly_report", 0.4),
    "4": ("insider_trade", 0.3),
    "3": ("insider_trade", 0.1),
    "5": ("insider_trade", 0.1),
    "144": ("insider_sale_notice", 0.2),
    "13F-HR": ("holdings_13f", 0.3),
    "13F-NT": ("holdings_13f", 0.1),
    "SC 13D": ("ownership", 0.6),
    "SC 13G": ("ownership", 0.4),
    "SCHEDULE 13D": ("ownership", 0.6),
    "SCHEDULE 13G": ("ownership", 0.4),
    "DEF 14A": ("proxy", 0.3),
    "DEFA14A": ("proxy", 0.2),
    "S-8": ("registration", 0.2),
    "N-1A": ("fund_registration", 0.5),
    "19B-4": ("rule_change", 0.8),
    "SD": ("other_filing", 0.1),
    "11-K": ("other_filing", 0.1),
}
# 8-K items that usually move prices, and the bonus each adds
SEC_8K_ITEMS: dict[str, float] = {
    "1.01": 0.1,  # material definitive agreement
    "1.05": 0.2,  # material cybersecurity incident
    "2.01": 0.15,  # acquisition or disposition
    "2.02": 0.1,  # results of operations
    "2.06": 0.15,  # material impairments (e.g. crypto assets)
    "3.01": 0.2,  # delisting notice
    "5.02": 0.1,  # officer departure / appointment
}


def classify_form(form: str, items: str | list[str] | None = None) -> tuple[str, float]:
    """SEC form type (and 8-K items) -> (kind, impact in [0, 1])."""
    name = form.strip().upper()
    amended = name.endswith("/A")
    base = name[:-2] if amended else name
    kind, impact = SEC_FORMS.get(base, ("other_filing", 0.1))
    if base.startswith("13F") and base not in SEC_FORMS:
        kind, impact = "holdings_13f", 0.2
    if base in ("8-K", "6-K") and items:
        listed = items if isinstance(items, list) else re.split(r"[,\s]+", items)
        impact += sum(SEC_8K_ITEMS.get(item.strip(), 0.0) for item in listed)
    if amended:
        impact *= 0.6
    return kind, round(min(impact, 1.0), 3)


ANNOUNCEMENT_IMPACT = {
    "listing": 0.9,
    "delisting": 0.9,
    "trading_halt": 0.7,
    "maintenance": 0.3,
    "feature": 0.2,
    "other": 0.1,
}
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "delisting",
        re.compile(
            r"\bde-?list|\bremov(al|ing|ed?)\b.*\b(coin|token|asset|support)|"
            r"\bno longer (be )?(support|available|list)",
            re.I,
        ),
    ),
    (
        "trading_halt",
        re.compile(
            r"\b(halt|halted|suspend|suspended|suspension|pause[sd]?)\b"
            r"|\btrading (is )?(temporarily )?(unavailable|disabled)",
            re.I,
        ),
    ),
    (
        "maintenance",
        re.compile(
            r"\b(maintenance|downtime|outage|network upgrade|hard fork|"
            r"scheduled upgrade|wallet upgrade)\b",
            re.I,
        ),
    ),
    (
        "listing",
        re.compile(
            r"\b(new (coin|token|listing)s?|now (available|listed|live)|"
            r"listing|listed|lists|adds?|added|welcome|launch(es|ed)? .*\btrading)"
            r"\b",
            re.I,
        ),
    ),
    (
        "feature",
        re.compile(
            r"\b(new feature|introducing|now support|launch(es|ed)?|"
            r"release[sd]?|update[sd]?|improvement)\b",
            re.I,
        ),
    ),
]
_NOT_COINS = frozenset(
    {
        "AUD",
        "USD",
        "NZD",
        "EUR",
        "GBP",
        "FAQ",
        "KYC",
        "AML",
        "API",
        "NFT",
        "ATO",
        "ASX",
        "OTC",
        "APP",
        "IOS",
        "PDF",
        "THE",
        "AND",
        "NEW",
        "NOW",
        "FOR",
        "ETF",
        "CEO",
        "USA",
        "UTC",
        "AEST",
        "AEDT",
        "ID",
        "TBA",
        "DEX",
        "CEX",
        "TAX",
        "ALL",
        "ON",
    }
)
_PAREN = re.compile(r"\(([A-Z][A-Z0-9]{1,9})\)")
_DOLLAR = re.compile(r"(?<![\w$])\$([A-Z][A-Z0-9]{1,9})\b")
_PAIR = re.compile(r"\b([A-Z][A-Z0-9]{1,9})/(?:AUD|USDT|BTC)\b")
_TAG = re.compile(r"<[^>]+>")


def strip_html(text: str) -> str:
    """Article body HTML -> plain text (tags dropped, entities decoded)."""
    return html.unescape(_TAG.sub(" ", text))


def classify_announcement(title: str, body: str = "") -> str:
    """The kind of a help-centre article: the title decides, the body only when it is silent."""
    for text in (title, strip_html(body)[:2000]):
        for kind, pattern in _RULES:
            if pattern.search(text):
                return kind
    return "other"


def extract_coins(*texts: str) -> list[str]:
    """Tickers named in `texts`, upper case, first-seen order, without currencies/acronyms."""
    found: dict[str, None] = {}
    for text in texts:
        plain = strip_html(text)
        for pattern in (_PAREN, _DOLLAR, _PAIR):
            for match in pattern.finditer(plain):
                ticker = match.group(1).upper()
                if ticker not in _NOT_COINS and not ticker.isdigit():
                    found.setdefault(ticker, None)
    return list(found)
