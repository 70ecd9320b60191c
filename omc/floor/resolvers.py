"""The registry of strategy-name resolvers: an outer layer teaches the Floor names
`prefix:REST` (the command line wires the Lab's approved models as `model:<ID>`) without the
Floor importing that layer. Light on purpose (no numpy, no pandas): the command line
registers its resolvers when it starts, and `omc --help` must stay fast. The resolver is
called only when such a name is looked up (`omc.floor.strategies.strategy_class`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omc.floor.strategy import Strategy

Resolver = Callable[[str], "type[Strategy]"]
_RESOLVERS: dict[str, Resolver] = {}


def register_resolver(prefix: str, resolver: Resolver) -> None:
    """Let an outer layer resolve strategy names `prefix:REST`; the resolver gets REST and
    returns a Strategy class, or raises ValueError (one line)."""
    _RESOLVERS[prefix] = resolver


def resolver_for(prefix: str) -> Resolver | None:
    """The resolver registered for `prefix`, if any."""
    return _RESOLVERS.get(prefix)
