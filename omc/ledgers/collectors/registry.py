"""Which collectors exist, by the name `omc collect --once SOURCE` takes."""

from __future__ import annotations

from collections.abc import Callable

from omc.core.config import Settings
from omc.ledgers.collectors.base import Collector

CollectorFactory = Callable[[Settings], Collector]


def _coinspot(settings: Settings) -> Collector:
    from omc.ledgers.exchange.coinspot import CoinSpotCollector

    return CoinSpotCollector.from_settings(settings)


COLLECTORS: dict[str, CollectorFactory] = {"coinspot": _coinspot}

# Expected interval per collector, for freshness in `omc status`.
INTERVALS: dict[str, Callable[[Settings], float]] = {
    "coinspot": lambda settings: settings.coinspot_interval_s,
}


def build(name: str, settings: Settings) -> Collector:
    try:
        factory = COLLECTORS[name]
    except KeyError:
        known = ", ".join(sorted(COLLECTORS))
        raise ValueError(f"unknown source {name!r} (known: {known})") from None
    return factory(settings)
