"""What the LLM reads, optionally masked (`OMC_LLM_MASK`): coins become `COIN1`, `COIN2`, …
and every date moves back by a whole number of weeks, so that the earliest stored bar falls
in the first week of 2000 (weekdays are kept: crypto has weekly patterns). A model then
cannot tie what it reads to what it remembers of those coins and dates. Prices and volumes
are not masked (their level can still hint at the coin: the report says masking is partial).

`View.out(text)` masks text the LLM is sent; `View.back(value)` maps what the LLM sends
(tool arguments, a proposal, its narrative) back to real coins and dates. Without masking
both are the identity.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from omc.lab.catalog import Catalog

QUOTES = frozenset({"USDT", "USD", "USDC", "BUSD", "AUD", "EUR", "GBP", "DAI", "FDUSD"})
ANCHOR = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday
_DATE = re.compile(
    r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})"
    r"(?:([T ])(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?(?![\d])"
)


class View:
    def __init__(self, catalog: Catalog, *, masked: bool) -> None:
        self.masked = masked
        coins = sorted({*catalog.bases(), *catalog.coins} - QUOTES)
        self.alias = {coin: f"COIN{i + 1}" for i, coin in enumerate(coins)} if masked else {}
        self.real = {v: k for k, v in self.alias.items()}
        firsts = [s.first for s in catalog.series if s.first is not None]
        weeks = (min(firsts) - ANCHOR).days // 7 if masked and firsts else 0
        self.shift = timedelta(weeks=weeks)
        self._coin_out = self._pattern(self.alias)
        self._coin_loose = self._pattern(self.alias, re.IGNORECASE)
        self._coin_back = self._pattern(self.real)

    @staticmethod
    def _pattern(names: dict[str, str], flags: int = 0) -> re.Pattern[str] | None:
        if not names:
            return None
        words = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        return re.compile(rf"(?<![A-Za-z0-9])({words})(?![A-Za-z0-9])", flags)

    def _dates(self, text: str, delta: timedelta) -> str:
        def move(m: re.Match[str]) -> str:
            year, month, day, sep, hh, mm, ss, frac, zone = m.groups()
            try:
                when = datetime(
                    int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0)
                )
            except ValueError:
                return m.group(0)
            moved = when + delta
            out = moved.strftime("%Y-%m-%d")
            if sep:
                out += f"{sep}{moved:%H:%M}" + (f":{moved:%S}" if ss else "")
                out += (frac or "") + (zone or "")
            return out

        return _DATE.sub(move, text)

    def out(self, text: str, *, loose: bool = False) -> str:
        """`text` as the LLM may read it. Coins are matched in upper case (as the ledgers
        write them); `loose`: in any case (the user's goal: "btc")."""
        if not self.masked:
            return text
        pattern = self._coin_loose if loose else self._coin_out
        if pattern is not None:
            text = pattern.sub(lambda m: self.alias[m.group(1).upper()], text)
        return self._dates(text, -self.shift)

    def back_text(self, text: str) -> str:
        if not self.masked:
            return text
        if self._coin_back is not None:
            text = self._coin_back.sub(lambda m: self.real[m.group(1)], text)
        return self._dates(text, self.shift)

    def back(self, value: Any) -> Any:
        """What the LLM sent, with real coins and dates (strings inside dicts and lists)."""
        if isinstance(value, str):
            return self.back_text(value)
        if isinstance(value, dict):
            return {k: self.back(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.back(v) for v in value]
        return value


__all__ = ["View"]
