"""Which collectors exist, by the name `omc collect --once SOURCE` takes.

Each entry names the collector class lazily (`module:Class`), so a source's dependencies load
only when it runs. Every class provides `from_settings(settings) -> Collector`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from omc.core.config import Settings
from omc.ledgers.collectors.base import Collector


class CollectorConfigError(ValueError):
    """A collector cannot run with the current settings (e.g. a missing API key)."""


COLLECTORS: dict[str, str] = {
    "coinspot": "omc.ledgers.exchange.coinspot:CoinSpotCollector",
    "defillama": "omc.ledgers.glass.defillama:DefiLlamaCollector",
    "onchain": "omc.ledgers.glass.onchain:OnchainCollector",
    "cryptopanic": "omc.ledgers.human.cryptopanic:CryptoPanicCollector",
    "reddit": "omc.ledgers.human.reddit:RedditCollector",
    "news": "omc.ledgers.human.news:NewsFeedCollector",
    "sec": "omc.ledgers.catalyst.sec:SecCollector",
    "announcements": "omc.ledgers.catalyst.announcements:AnnouncementsCollector",
}

# Expected interval per collector, for scheduling context and freshness in `omc status`.
INTERVALS: dict[str, Callable[[Settings], float]] = {
    "coinspot": lambda s: s.coinspot_interval_s,
    "defillama": lambda s: s.defillama_interval_s,
    "onchain": lambda s: s.onchain_interval_s,
    "cryptopanic": lambda s: s.cryptopanic_interval_s,
    "reddit": lambda s: s.reddit_interval_s,
    "news": lambda s: s.news_interval_s,
    "sec": lambda s: s.sec_interval_s,
    "announcements": lambda s: s.announcements_interval_s,
}


def available() -> list[str]:
    """Names of the collectors whose code is installed."""
    names = []
    for name, target in COLLECTORS.items():
        module = target.split(":", 1)[0]
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def build(name: str, settings: Settings) -> Collector:
    """The collector called `name`, configured from `settings`.

    Raises ValueError for an unknown name and CollectorConfigError when settings it needs
    (keys, endpoints) are missing.
    """
    try:
        target = COLLECTORS[name]
    except KeyError:
        known = ", ".join(sorted(COLLECTORS))
        raise ValueError(f"unknown source {name!r} (known: {known})") from None
    module_name, class_name = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(f"source {name!r} is not built yet ({module_name})") from None
        raise
    collector: Collector = getattr(module, class_name).from_settings(settings)
    return collector
